/**
 * A real OpenSSH server for tests (Debian openssh-server, root only): temp config, its own host key,
 * per-user authorized_keys (`<dir>/authorized_keys/<user>`), on a free loopback port or inside a network
 * namespace (via test/helpers/netns.ts). Stopped by pid/process group; `stop()` is safe to call twice.
 * Also: key pairs made with ssh-keygen, and a throw-away non-root user without sudo.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../src/lib/exec.js';
import { SpawnedProcess, spawnIn } from './netns.js';

/** What a test run that dies without its `after` hooks leaves behind: killed/removed on exit. */
const livePids = new Set<number>();
const liveUsers = new Set<string>();
process.once('exit', () => {
  for (const pid of livePids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const u of liveUsers) spawnSync('userdel', ['-f', u]);
});

export interface KeyPair {
  privateKeyFile: string;
  publicKey: string;
  /** `SHA256:...` as ssh-keygen -l prints it. */
  fingerprint: string;
}

/** Makes a key pair with ssh-keygen (ed25519 unless told), optionally passphrase-protected. */
export async function makeKey(
  dir: string,
  name: string,
  options: { type?: 'ed25519' | 'ecdsa' | 'rsa'; passphrase?: string } = {},
): Promise<KeyPair> {
  const file = join(dir, name);
  await exec([
    'ssh-keygen',
    '-q',
    '-t',
    options.type ?? 'ed25519',
    '-N',
    options.passphrase ?? '',
    '-C',
    name,
    '-f',
    file,
  ]);
  const fp = await exec(['ssh-keygen', '-l', '-f', `${file}.pub`]);
  return {
    privateKeyFile: file,
    publicKey: readFileSync(`${file}.pub`, 'utf8').trim(),
    fingerprint: fp.stdout.split(/\s+/)[1]!,
  };
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface Sshd {
  host: string;
  port: number;
  dir: string;
  hostKey: KeyPair;
  process: SpawnedProcess;
  /** Lets `user` log in with `publicKey` (replaces that user's authorized_keys). */
  authorize(user: string, publicKey: string): void;
  /** A known_hosts line for this server (`[host]:port type base64`). */
  knownHostsLine(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Run inside this network namespace, listening on `listenAddress` (default 0.0.0.0) port 22. */
  ns?: string;
  listenAddress?: string;
  port?: number;
  hostKeyType?: 'ed25519' | 'ecdsa' | 'rsa';
  /** Re-use a host key (to restart "the same" host). */
  hostKey?: KeyPair;
  dir?: string;
}

/** Starts sshd -D -e with a temp config and waits for "Server listening". */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'pg-sshd-'));
  mkdirSync(dir, { recursive: true });
  // sshd reads authorized_keys as the logging-in user: non-root test users must be able to read them
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'authorized_keys'), { recursive: true, mode: 0o755 });
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey =
    options.hostKey ??
    (await makeKey(dir, `host_${randomBytes(3).toString('hex')}`, { type: options.hostKeyType }));
  const host = options.listenAddress ?? (options.ns ? '0.0.0.0' : '127.0.0.1');
  const port = options.port ?? (options.ns ? 22 : await freePort());
  const config = join(dir, `sshd_config_${port}`);
  writeFileSync(
    config,
    [
      `Port ${port}`,
      `ListenAddress ${host}`,
      `HostKey ${hostKey.privateKeyFile}`,
      `PidFile ${join(dir, `sshd_${port}.pid`)}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}/%u`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding yes',
      'PrintMotd no',
      'Subsystem sftp internal-sftp',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const argv = ['/usr/sbin/sshd', '-D', '-e', '-f', config];
  let proc: SpawnedProcess;
  if (options.ns) proc = spawnIn(options.ns, argv);
  else {
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    proc = new SpawnedProcess(child, true);
  }
  try {
    await proc.waitFor(/Server listening on/, 10_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  livePids.add(proc.pid);
  void proc.exited.then(() => livePids.delete(proc.pid));
  const hostPub = hostKey.publicKey.split(/\s+/);
  return {
    host: host === '0.0.0.0' ? '127.0.0.1' : host,
    port,
    dir,
    hostKey,
    process: proc,
    authorize(user, publicKey) {
      writeFileSync(join(dir, 'authorized_keys', user), publicKey + '\n', { mode: 0o644 });
    },
    knownHostsLine() {
      const h = host === '0.0.0.0' ? '127.0.0.1' : host;
      return `${port === 22 ? h : `[${h}]:${port}`} ${hostPub[0]} ${hostPub[1]}`;
    },
    async stop() {
      await proc.stop(2000);
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A local user with a shell, no password, no home and no sudo; `remove()` deletes it (never throws). */
export async function createUnprivilegedUser(): Promise<{ name: string; remove(): Promise<void> }> {
  const name = `pgnosudo${randomBytes(3).toString('hex')}`;
  // '*' rather than useradd's locked '!': sshd without PAM refuses locked accounts even for key logins
  await exec(['useradd', '-M', '-d', '/nonexistent', '-s', '/bin/sh', '-p', '*', name]);
  liveUsers.add(name);
  return {
    name,
    async remove() {
      liveUsers.delete(name);
      await exec(['userdel', '-f', name], { check: false }).catch(() => undefined);
    },
  };
}

/** True when the sshd binary exists and we are root (it needs /run/sshd and host keys we own). */
export function canRunSshd(): boolean {
  return existsSync('/usr/sbin/sshd') && typeof process.getuid === 'function' && process.getuid() === 0;
}
