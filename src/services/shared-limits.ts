/**
 * Counters that several `serve` replicas share through the store, so that N replicas do not allow N
 * times a limit (PostgreSQL: `rate_events`, store/pg/rate-window.ts). Absent on SQLite, where a data
 * dir has one `serve` and its in-memory counters are the only ones.
 */
export interface SharedLimits {
  /**
   * Counts one event of `key` at `now` unless `limit` are already in the last `windowMs`; with
   * `backoffMs`, past the limit one more is admitted after a delay that doubles with each one past it.
   */
  admit(
    scope: string,
    key: string,
    limit: number,
    windowMs: number,
    now: number,
    backoffMs?: number,
  ): Promise<{ allowed: boolean; retryAfterMs: number }>;
  /** Removes one event counted at `at` (an attempt that turned out not to count). */
  forget(scope: string, key: string, at: number): Promise<void>;
  /** The newest event of `key` after `since`, if any. */
  newest(scope: string, key: string, since: number): Promise<number | undefined>;
  /** Keeps one event of `key`, at `at` (a mark such as "signed in from this address"). */
  mark(scope: string, key: string, at: number): Promise<void>;
}
