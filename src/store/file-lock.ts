import Database from 'better-sqlite3';

/** How long a process waits for another one's critical section before giving up (SQLITE_BUSY). */
const LOCK_WAIT_MS = 10_000;

/**
 * Runs `fn` while holding an exclusive lock shared by every process on this machine, kept in the
 * SQLite file `lockFile` (created when missing). SQLite's locks are POSIX advisory locks, which the
 * kernel releases when the holder dies, so a process killed inside `fn` never leaves the lock taken.
 * `fn` must be synchronous: the lock is one BEGIN IMMEDIATE transaction.
 */
export function withFileLock<R>(lockFile: string, fn: () => R): R {
  const db = new Database(lockFile);
  try {
    db.pragma(`busy_timeout = ${LOCK_WAIT_MS}`);
    return db.transaction(fn).immediate();
  } finally {
    db.close();
  }
}

/** The same lock as {@link withFileLock}, held across asynchronous work until `release()`. */
export interface HeldFileLock {
  release(): void;
}

/** Takes the lock in `lockFile` without waiting; undefined when another connection or process holds it. */
export function tryFileLock(lockFile: string): HeldFileLock | undefined {
  const db = new Database(lockFile);
  try {
    db.pragma('busy_timeout = 0');
    db.exec('BEGIN IMMEDIATE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') return undefined;
    throw err;
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      try {
        db.exec('COMMIT');
      } finally {
        db.close();
      }
    },
  };
}

/**
 * Runs the asynchronous `fn` while holding the lock in `lockFile`, shared by every process on this
 * machine (and every connection in this one). Waiting never blocks the event loop: the lock is tried
 * every `pollMs` until `waitMs` have passed, then `onTimeout()` is thrown. A process that dies while
 * holding it releases it (a POSIX advisory lock, as for {@link withFileLock}).
 */
export async function withAsyncFileLock<R>(
  lockFile: string,
  fn: () => Promise<R>,
  o: { waitMs: number; pollMs?: number; onTimeout: () => Error; onWait?: () => void },
): Promise<R> {
  const end = Date.now() + o.waitMs;
  let lock = tryFileLock(lockFile);
  if (!lock) o.onWait?.();
  while (!lock) {
    if (Date.now() >= end) throw o.onTimeout();
    await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
    lock = tryFileLock(lockFile);
  }
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
