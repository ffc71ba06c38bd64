/**
 * A real PostgreSQL server for tests (Debian's `postgresql` package): `initdb` and `pg_ctl` in a
 * temporary directory, on a free loopback port, with default settings (READ COMMITTED isolation).
 * PostgreSQL refuses to run as root, so as root the server runs as `nobody` (through `runuser`); as any
 * other user it runs as that user. TCP connections need the superuser's password (scram-sha-256), the
 * way a real deployment authenticates; the password is also written to a file (`passwordFile`).
 * `stop()` shuts the server down and removes the directory; it is safe to call twice, and a test run that
 * dies without its `after` hooks still stops the server on exit.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './sshd.js';

/** Servers of this process still running: stopped (immediate mode) when the process exits. */
const live = new Map<string, string>(); // data dir -> temp dir
process.once('exit', () => {
  for (const [dataDir, dir] of live) {
    killPostmaster(dataDir);
    rmSync(dir, { recursive: true, force: true });
  }
});

function killPostmaster(dataDir: string): void {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGQUIT'); // immediate shutdown: the directory goes next anyway
  } catch {
    /* not running */
  }
}

/** The bin directory of the newest PostgreSQL under /usr/lib/postgresql (Debian keeps one per major). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((d) => /^\d+$/.test(d))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const m of majors) {
    const bin = join(root, m, 'bin');
    if (existsSync(join(bin, 'pg_ctl')) && existsSync(join(bin, 'initdb'))) return bin;
  }
  throw new Error(
    'PostgreSQL is not installed (no /usr/lib/postgresql/<major>/bin/pg_ctl): apt-get install postgresql',
  );
}

export interface PgServer {
  host: string;
  port: number;
  /** The superuser the tests connect as. */
  user: string;
  password: string;
  /** A file holding only the password (mode 0644 so that `nobody` could read it too). */
  passwordFile: string;
  /** The temporary directory (data, socket, log, password file). */
  dir: string;
  /** `postgres://user@host:port/db` without the password. */
  url(database?: string): string;
  /** Creates an empty database with a fresh name and returns its name. */
  createDatabase(prefix?: string): Promise<string>;
  /** A client connection (the caller ends it). */
  connect(database?: string): Promise<pg.Client>;
  /** The server's log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

const SUPERUSER = 'podgate_test';

/** Starts a fresh PostgreSQL cluster; call `stop()` in `after`. */
export async function startPostgres(): Promise<PgServer> {
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const runAs = (argv: string[]): string[] => (asRoot ? ['runuser', '-u', 'nobody', '--', ...argv] : argv);
  const dir = mkdtempSync(join(tmpdir(), 'podgate-pg-'));
  const dataDir = join(dir, 'data');
  const sockDir = join(dir, 'sock');
  const logFile = join(dir, 'server.log');
  const passwordFile = join(dir, 'password');
  const password = randomBytes(18).toString('base64url');
  let started = false;
  try {
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o644 });
    spawnSyncOk(['mkdir', '-p', sockDir]);
    if (asRoot) {
      const nobody = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
      const gid = spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' });
      const uid = Number(nobody.stdout.trim());
      const g = Number(gid.stdout.trim());
      for (const p of [dir, sockDir, passwordFile]) chownSync(p, uid, g);
      chmodSync(dir, 0o700);
    }
    spawnSyncOk(
      runAs([
        join(bin, 'initdb'),
        '-D',
        dataDir,
        '-U',
        SUPERUSER,
        '--pwfile',
        passwordFile,
        '--auth-local',
        'trust',
        '--auth-host',
        'scram-sha-256',
        '-E',
        'UTF8',
        '--locale',
        'C',
        '--no-sync',
      ]),
    );
    const port = await freePort();
    // pg_ctl -o: only digits and our own temp path (no spaces) go into this option string
    spawnSyncOk(
      runAs([
        join(bin, 'pg_ctl'),
        '-D',
        dataDir,
        '-l',
        logFile,
        '-w',
        '-t',
        '60',
        '-o',
        `-p ${port} -k ${sockDir} -c listen_addresses=127.0.0.1 -c fsync=off`,
        'start',
      ]),
      () => readLog(logFile),
    );
    started = true;
    live.set(dataDir, dir);
    const host = '127.0.0.1';
    const config = (database = 'postgres'): pg.ClientConfig => ({
      host,
      port,
      user: SUPERUSER,
      password,
      database,
    });
    let stopped = false;
    const server: PgServer = {
      host,
      port,
      user: SUPERUSER,
      password,
      passwordFile,
      dir,
      url: (database = 'postgres') => `postgres://${SUPERUSER}@${host}:${port}/${database}`,
      async createDatabase(prefix = 'podgate') {
        const name = `${prefix}_${randomBytes(6).toString('hex')}`;
        const c = new pg.Client(config());
        await c.connect();
        try {
          await c.query(`CREATE DATABASE ${name}`);
        } finally {
          await c.end();
        }
        return name;
      },
      async connect(database) {
        const c = new pg.Client(config(database));
        await c.connect();
        return c;
      },
      log: () => readLog(logFile),
      async stop() {
        if (stopped) return;
        stopped = true;
        const argv = runAs([join(bin, 'pg_ctl'), '-D', dataDir, '-m', 'fast', '-w', 'stop']);
        spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' });
        killPostmaster(dataDir); // no-op when the fast stop worked
        live.delete(dataDir);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return server;
  } catch (err) {
    if (started) killPostmaster(dataDir);
    live.delete(dataDir);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function spawnSyncOk(argv: string[], extra?: () => string): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(
      `${argv.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}${r.stdout}${extra ? `\n${extra()}` : ''}`,
    );
  }
}
