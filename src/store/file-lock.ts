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

/**
 * withFileLock for an asynchronous `fn` (a backup copying the database): the lock is a BEGIN IMMEDIATE
 * held on its own connection until `fn` settles. Waiting for the lock blocks the event loop (SQLite's
 * busy handler) for at most LOCK_WAIT_MS, so holders of this lock keep their critical sections short.
 */
export async function withFileLockAsync<R>(lockFile: string, fn: () => Promise<R>): Promise<R> {
  const db = new Database(lockFile);
  try {
    db.pragma(`busy_timeout = ${LOCK_WAIT_MS}`);
    db.prepare('BEGIN IMMEDIATE').run();
    try {
      return await fn();
    } finally {
      db.prepare('ROLLBACK').run();
    }
  } finally {
    db.close();
  }
}
