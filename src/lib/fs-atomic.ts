import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  chmodSync,
  lstatSync,
  mkdtempSync,
} from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes a file so that readers see the old content or the new, never a half-written one:
 * temp file in the same directory, fsync, chmod, rename. The directory is created (0700) if needed.
 * The temp file is named `.<name>.<writer pid>.<random>.tmp`, so one left by a killed writer can be
 * told apart from one being written right now (removeStaleTempFiles).
 * `durable: false` leaves out the two fsyncs (file and directory): still never half-written for a
 * reader, but a power cut may lose the write. Only for files rewritten from their source at every
 * start (server.conf and the server's key files): the next start writes them again.
 */
export function writeFileAtomic(
  path: string,
  data: string | Buffer,
  mode = 0o600,
  { durable = true }: { durable?: boolean } = {},
): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
    closeSync(fd);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* already closed: closeSync itself failed */
    }
    rmSync(tmp, { force: true });
    throw err;
  }
  chmodSync(tmp, mode); // umask may have narrowed the mode given to open
  renameSync(tmp, path);
  if (!durable) return;
  try {
    const dfd = openSync(dir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    /* directory fsync is best effort (not supported everywhere) */
  }
}

/** writeFileAtomic's temp names: with the writer's pid, and the older form without it (release 0.1.0). */
const TEMP_WITH_PID = /^\..+\.([1-9][0-9]{0,9})\.[0-9a-f]{12}\.tmp$/;
const TEMP_LEGACY = /^\..+\.[0-9a-f]{12}\.tmp$/;
/** A legacy temp name carries no pid: only one this old is surely not being written. */
const LEGACY_STALE_MS = 10 * 60_000;

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files writeFileAtomic leaves behind when its process is killed between the open and
 * the rename: only regular files with exactly its naming pattern, whose writer pid no longer runs (or,
 * for the pid-less names of older releases, untouched for 10 minutes). Anything else in `dir` is left
 * alone. Returns the names removed; a dir that does not exist yields none.
 */
export function removeStaleTempFiles(dir: string, now = Date.now()): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const withPid = TEMP_WITH_PID.exec(name);
    if (!withPid && !TEMP_LEGACY.test(name)) continue;
    const path = join(dir, name);
    try {
      const st = statSync(path);
      if (!st.isFile()) continue;
      const stale = withPid ? !alive(Number(withPid[1])) : now - st.mtimeMs > LEGACY_STALE_MS;
      if (!stale) continue;
      rmSync(path, { force: true });
      removed.push(name);
    } catch {
      /* gone meanwhile (its writer renamed it, or another start removed it) */
    }
  }
  return removed;
}

/** Scratch directories: `.<kind>-<pid>-<6 random characters>` (mkdtemp's suffix). */
const SCRATCH = /^\.(backup|restore)-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/;

/**
 * Makes a private (0700) scratch directory for `kind` inside `dir`, named after this process so that one
 * left by a killed process is known as such (removeStaleScratchDirs). Backup and restore keep their
 * copies of the database and the CA key here, inside the data dir, never in the system temp directory.
 */
export function makeScratchDir(dir: string, kind: 'backup' | 'restore'): string {
  return mkdtempSync(join(dir, `.${kind}-${process.pid}-`));
}

/**
 * Removes the scratch directories of backups and restores whose process no longer runs (killed
 * mid-way); those of live processes and everything else are left alone. Returns the names removed.
 */
export function removeStaleScratchDirs(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = SCRATCH.exec(name);
    if (!m || alive(Number(m[2]))) continue;
    const path = join(dir, name);
    try {
      if (!lstatSync(path).isDirectory()) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(name);
    } catch {
      /* gone meanwhile */
    }
  }
  return removed;
}
