/**
 * A small SSH session over ssh2: run argv (quoted by shell-quote, never a raw string), write a file over
 * SFTP with a mode, and open a TCP channel (forwardOut). Host keys are checked by HostKeyCheck through
 * ssh2's `hostVerifier`; refusals become AppErrors that say why and what to do.
 */
import type { Duplex } from 'node:stream';
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { AppError, Unauthorized, Upstream } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { HostKeyCheck, type HostKeyPolicyOptions } from './host-keys.js';
import { shellJoin } from './shell-quote.js';
import { formatTarget, knownHostsName, type SshTarget } from './target.js';

const log = logger.child({ module: 'gateway.ssh' });

export interface RemoteOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** What the gateway code needs from an SSH connection (tests may fake it). */
export interface SshSession {
  readonly target: SshTarget;
  /** Runs argv on the remote host; resolves with the exit code (never rejects on a non-zero exit). */
  exec(argv: readonly string[], options?: { stdin?: string | Buffer }): Promise<RemoteOutput>;
  /** Writes a file over SFTP, created with `mode` (the SSH user must be able to write there). */
  writeFile(path: string, data: string | Buffer, mode: number): Promise<void>;
  /** Opens a TCP connection from the remote host to host:port (SSH direct-tcpip). */
  forwardOut(host: string, port: number): Promise<Duplex>;
  close(): void;
}

export interface SshConnectOptions {
  target: SshTarget;
  privateKey: string | Buffer;
  passphrase?: string;
  hostKeys: HostKeyPolicyOptions;
  readyTimeoutMs?: number;
  /** Send SSH keepalives this often (long-lived sessions such as the bastion tunnel); 0/undefined = off. */
  keepaliveIntervalMs?: number;
}

/** Thrown when the host key is refused: `code` is host_key_unknown, host_key_changed or host_key_revoked. */
export class HostKeyRefused extends AppError {
  constructor(code: string, message: string) {
    super(403, code, message);
  }
}

function refusal(check: HostKeyCheck, target: SshTarget): AppError | undefined {
  const d = check.decision;
  if (!d || check.accepted !== false) return undefined;
  const where = formatTarget(target);
  if (d.verdict === 'unknown') {
    return new HostKeyRefused(
      'host_key_unknown',
      `host key of ${where} is unknown (${d.keyType} ${d.fingerprint}); check it on the host with ` +
        `\`ssh-keygen -lf /etc/ssh/ssh_host_${d.keyType.replace(/^ssh-|-sha2-nistp\d+$/g, '')}_key.pub\` and rerun with --accept-new-host-key, ` +
        `or pin it in gateway.hostKeyFingerprints`,
    );
  }
  if (d.verdict === 'revoked')
    return new HostKeyRefused(
      'host_key_revoked',
      `host key of ${where} (${d.fingerprint}) is marked @revoked in known_hosts`,
    );
  return new HostKeyRefused(
    'host_key_changed',
    `HOST KEY OF ${where} HAS CHANGED: it offered ${d.keyType} ${d.fingerprint}, which does not match the ${d.source ?? 'known key'}. ` +
      `Someone may be intercepting the connection. Refused; if the host was really reinstalled, remove its line from the known_hosts file.`,
  );
}

/** Connects, checks the host key, authenticates with the private key. */
export function connectSsh(options: SshConnectOptions): Promise<SshSession> {
  const { target } = options;
  const check = new HostKeyCheck(options.hostKeys, target.host, target.port, knownHostsName(target));
  const client = new Client();
  const algos = check.serverHostKeyAlgorithms();
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    privateKey: options.privateKey,
    passphrase: options.passphrase,
    hostVerifier: check.verify,
    readyTimeout: options.readyTimeoutMs ?? 15_000,
    keepaliveInterval: options.keepaliveIntervalMs ?? 0,
    ...(algos ? { algorithms: { serverHostKey: algos as never } } : {}),
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    client.once('ready', () => {
      settled = true;
      log.debug({ target: formatTarget(target) }, 'ssh connected');
      resolve(new Ssh2Session(client, target));
    });
    // `on`, not `once`: an error after the handshake (connection reset) must not crash the process
    client.on('error', (err: Error & { level?: string }) => {
      if (settled) {
        log.warn({ target: formatTarget(target), err: err.message }, 'ssh connection error');
        return;
      }
      settled = true;
      client.end();
      const refused = refusal(check, target);
      if (refused) reject(refused);
      else if (err.level === 'client-authentication') {
        reject(new Unauthorized(`ssh ${formatTarget(target)}: the server refused the key (${err.message})`));
      } else reject(new Upstream(`ssh ${formatTarget(target)}: ${err.message}`, err));
    });
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 throws synchronously for an unreadable or wrongly encrypted private key
      settled = true;
      reject(
        new AppError(400, 'bad_identity', `identity: ${(err as Error).message}`, {
          field: 'identity',
          cause: err,
        }),
      );
    }
  });
}

class Ssh2Session implements SshSession {
  private sftpP: Promise<SFTPWrapper> | undefined;

  constructor(
    private readonly client: Client,
    readonly target: SshTarget,
  ) {}

  async exec(argv: readonly string[], options: { stdin?: string | Buffer } = {}): Promise<RemoteOutput> {
    const command = shellJoin(argv);
    log.debug({ command }, 'ssh exec');
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err) return reject(new Upstream(`ssh exec failed: ${err.message}`, err));
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        let code = -1;
        stream.on('data', (b: Buffer) => out.push(b));
        stream.stderr.on('data', (b: Buffer) => errs.push(b));
        stream.on('exit', (c: number | null, signal?: string) => {
          code = c ?? (signal ? 128 : 1);
        });
        stream.on('close', () =>
          resolve({
            code: code < 0 ? 1 : code,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(errs).toString('utf8'),
          }),
        );
        if (options.stdin !== undefined) stream.end(options.stdin);
        else stream.end();
      });
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpP ??= new Promise((resolve, reject) =>
      this.client.sftp((err, sftp) =>
        err ? reject(new Upstream(`sftp: ${err.message}`, err)) : resolve(sftp),
      ),
    );
    return this.sftpP;
  }

  async writeFile(path: string, data: string | Buffer, mode: number): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) =>
      sftp.writeFile(path, data, { mode }, (err) =>
        err ? reject(new Upstream(`sftp write ${path}: ${err.message}`, err)) : resolve(),
      ),
    );
    // writeFile's mode only applies when the file is created: force it for an existing file too
    await new Promise<void>((resolve, reject) =>
      sftp.chmod(path, mode, (err) =>
        err ? reject(new Upstream(`sftp chmod ${path}: ${err.message}`, err)) : resolve(),
      ),
    );
  }

  forwardOut(host: string, port: number): Promise<Duplex> {
    return new Promise((resolve, reject) =>
      this.client.forwardOut('127.0.0.1', 0, host, port, (err, channel) =>
        err ? reject(new Upstream(`ssh forward to ${host}:${port}: ${err.message}`, err)) : resolve(channel),
      ),
    );
  }

  close(): void {
    this.client.end();
  }
}
