/**
 * The gateway host as the provisioning steps see it: privileged commands (as root, or through
 * passwordless `sudo -n`), with a fixed PATH so /usr/sbin tools are found for any login user, and files
 * installed with an exact mode. Every command is argv, quoted by shell-quote inside SshSession.exec.
 */
import { createHash } from 'node:crypto';
import { AppError, Forbidden } from '../lib/errors.js';
import type { RemoteOutput, SshSession } from './ssh-session.js';
import { shellJoin } from './shell-quote.js';
import { formatTarget } from './target.js';

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A remote command exited non-zero: carries the command line (as shown to the user) and its stderr. */
export class RemoteCommandFailed extends AppError {
  constructor(
    readonly command: string,
    readonly exitCode: number,
    readonly stderr: string,
  ) {
    super(
      502,
      'remote_command_failed',
      `\`${command}\` exited ${exitCode}${stderr.trim() ? `: ${stderr.trim().slice(0, 2000)}` : ''}`,
    );
  }
}

export interface RunOptions {
  /** Throw RemoteCommandFailed on a non-zero exit (default true). */
  check?: boolean;
  stdin?: string | Buffer;
}

export class RemoteHost {
  private constructor(
    readonly session: SshSession,
    /** True when commands go through `sudo -n` (the SSH user is not root). */
    readonly sudo: boolean,
  ) {}

  /** Root, or a user with passwordless sudo; anything else is refused (403) before any change. */
  static async open(session: SshSession): Promise<RemoteHost> {
    const id = await session.exec(['id', '-u']);
    if (id.code === 0 && id.stdout.trim() === '0') return new RemoteHost(session, false);
    const sudo = await session.exec(['sudo', '-n', 'true']);
    if (sudo.code === 0) return new RemoteHost(session, true);
    throw new Forbidden(
      `${formatTarget(session.target)}: user ${session.target.user} is not root and has no passwordless sudo ` +
        `(\`sudo -n true\` exited ${sudo.code}: ${sudo.stderr.trim() || 'no output'})`,
    );
  }

  /** Runs argv with root rights. The command is reported (and logged) without the PATH/sudo prefix. */
  async run(argv: readonly string[], options: RunOptions = {}): Promise<RemoteOutput> {
    const full = this.sudo ? ['sudo', '-n', '--', 'env', PATH, ...argv] : ['env', PATH, ...argv];
    const r = await this.session.exec(full, { stdin: options.stdin });
    if (r.code !== 0 && options.check !== false)
      throw new RemoteCommandFailed(shellJoin(argv), r.code, r.stderr);
    return r;
  }

  /** The file's text, or undefined when it does not exist or is not a regular file. */
  async read(path: string): Promise<string | undefined> {
    const r = await this.run(['cat', '--', path], { check: false });
    return r.code === 0 ? r.stdout : undefined;
  }

  /** `sha256sum` of a regular file, or undefined when there is none. */
  async sha256(path: string): Promise<string | undefined> {
    const r = await this.run(['sha256sum', '--', path], { check: false });
    return r.code === 0 ? r.stdout.split(/\s+/)[0] : undefined;
  }

  /** Octal mode (`600`) of a path, or undefined. */
  async mode(path: string): Promise<string | undefined> {
    const r = await this.run(['stat', '-c', '%a', '--', path], { check: false });
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  /** True when the path holds exactly `content` with `mode` (octal, e.g. 0o600). */
  async hasFile(path: string, content: string, mode: number): Promise<boolean> {
    const want = createHash('sha256').update(content).digest('hex');
    return (await this.sha256(path)) === want && (await this.mode(path)) === mode.toString(8);
  }

  /**
   * Installs a file owned by root with `mode`: SFTP upload (created 0600, as the SSH user) to a mktemp file,
   * then `install -T -m MODE -o root -g root` into place (which also works through sudo), then removes the temp.
   */
  async installFile(path: string, content: string, mode: number): Promise<void> {
    const tmp = await this.session.exec(['mktemp', '/tmp/podgate.XXXXXXXXXX']);
    if (tmp.code !== 0) throw new RemoteCommandFailed('mktemp /tmp/podgate.XXXXXXXXXX', tmp.code, tmp.stderr);
    const tmpPath = tmp.stdout.trim();
    try {
      await this.session.writeFile(tmpPath, content, 0o600);
      // -T: never treat an existing directory at `path` as "copy into it"
      await this.run([
        'install',
        '-D',
        '-T',
        '-m',
        mode.toString(8),
        '-o',
        'root',
        '-g',
        'root',
        '--',
        tmpPath,
        path,
      ]);
    } finally {
      await this.session.exec(['rm', '-f', '--', tmpPath]);
    }
  }

  /** Removes files (no error when missing). */
  async remove(...paths: string[]): Promise<void> {
    await this.run(['rm', '-f', '--', ...paths]);
  }
}
