import { LOCK } from '../locks.js';
import { lockInTransaction, type PgDb } from './db.js';

export interface WindowVerdict {
  allowed: boolean;
  /** Events counted in the window, this one included when allowed. */
  count: number;
  /** When refused: milliseconds until the oldest event leaves the window. */
  retryAfterMs: number;
}

/**
 * A sliding-window limit shared by every replica: at most `limit` events per `key` in any `windowMs`;
 * with `backoffMs`, past the limit one more event is admitted once `backoffMs` (doubled for each event
 * already past the limit, at most `windowMs`) has passed since the newest one (the sign-in throttle).
 * Check and count happen in one transaction under a transaction-scoped advisory lock on the key, so two
 * replicas admitting at the same moment cannot both take the last slot (each process counting in its
 * own memory would double the limit). Old events of the key are deleted on the way.
 */
export async function admitInWindow(
  db: PgDb,
  scope: string,
  key: string,
  limit: number,
  windowMs: number,
  now: number,
  backoffMs = 0,
): Promise<WindowVerdict> {
  return db.atomic(async (tx) => {
    await lockInTransaction(tx, LOCK.rate(scope, key));
    await tx.run('DELETE FROM rate_events WHERE scope = ? AND key = ? AND at <= ?', [
      scope,
      key,
      now - windowMs,
    ]);
    const r = (await tx.get<{ n: number; oldest: number | null; newest: number | null }>(
      'SELECT count(*) AS n, min(at) AS oldest, max(at) AS newest FROM rate_events WHERE scope = ? AND key = ?',
      [scope, key],
    ))!;
    if (r.n >= limit && backoffMs > 0) {
      // past the budget: one more event after a delay that doubles with each one already past it
      const delay = Math.min(backoffMs * 2 ** Math.min(r.n - limit, 30), windowMs);
      const wait = (r.newest ?? now) + delay - now;
      if (wait > 0) return { allowed: false, count: r.n, retryAfterMs: wait };
    } else if (r.n >= limit) {
      return { allowed: false, count: r.n, retryAfterMs: Math.max(0, (r.oldest ?? now) + windowMs - now) };
    }
    await tx.run('INSERT INTO rate_events (scope, key, at) VALUES (?, ?, ?)', [scope, key, now]);
    return { allowed: true, count: r.n + 1, retryAfterMs: 0 };
  });
}

/** Removes one counted event again (an attempt that turned out not to count, e.g. a successful sign-in). */
export async function forgetInWindow(db: PgDb, scope: string, key: string, at: number): Promise<void> {
  await db.run(
    'DELETE FROM rate_events WHERE ctid IN (SELECT ctid FROM rate_events WHERE scope = ? AND key = ? AND at = ? LIMIT 1)',
    [scope, key, at],
  );
}

/** Deletes every event older than `before` (a leader's sweep; windows delete their own keys anyway). */
export function pruneRateEvents(db: PgDb, before: number): Promise<number> {
  return db.run('DELETE FROM rate_events WHERE at < ?', [before]);
}

/** The time of the newest event of `key` after `since`, if any (the sign-in throttle's known addresses). */
export async function newestInWindow(
  db: PgDb,
  scope: string,
  key: string,
  since: number,
): Promise<number | undefined> {
  const r = await db.get<{ at: number | null }>(
    'SELECT max(at) AS at FROM rate_events WHERE scope = ? AND key = ? AND at > ?',
    [scope, key, since],
  );
  return r?.at ?? undefined;
}

/** Replaces the events of `key` by one at `at` (a mark that only its newest time matters for). */
export async function markInWindow(db: PgDb, scope: string, key: string, at: number): Promise<void> {
  await db.atomic(async (tx) => {
    await tx.run('DELETE FROM rate_events WHERE scope = ? AND key = ?', [scope, key]);
    await tx.run('INSERT INTO rate_events (scope, key, at) VALUES (?, ?, ?)', [scope, key, at]);
  });
}
