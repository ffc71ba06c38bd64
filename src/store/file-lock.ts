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
