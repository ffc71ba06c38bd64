/**
 * The totals of the certificate list, counted once per change of the list instead of once per request.
 * Both engines keep a version number of the list (`cert_list_version`, bumped by triggers in the
 * transaction of every write a filter could see: SQLite 014, PostgreSQL 004); a total counted at
 * version v is the total of every later read at version v, whichever process wrote. Every view goes
 * through it the same way: its key is the count statement and its parameters (an expiry window's `now`
 * is among them, so a window is counted per request: a range of one index).
 *
 * Limits: only for reads outside a transaction (a transaction's own uncommitted writes bump a version
 * a rollback gives back); one memo per store (versions of two databases say nothing of each other);
 * at most MAX_ENTRIES keys, the oldest dropped first.
 */
export class CountMemo {
  static readonly MAX_ENTRIES = 256;
  private readonly totals = new Map<string, { version: number; total: number }>();

  /** The total counted for key at this version, if any. */
  get(key: string, version: number): number | undefined {
    const hit = this.totals.get(key);
    return hit !== undefined && hit.version === version ? hit.total : undefined;
  }

  set(key: string, version: number, total: number): void {
    this.totals.delete(key);
    this.totals.set(key, { version, total });
    if (this.totals.size > CountMemo.MAX_ENTRIES) this.totals.delete(this.totals.keys().next().value!);
  }
}

/** The memo key of a count statement with its parameters. */
export function countKey(sql: string, params: Record<string, unknown>): string {
  return JSON.stringify([sql, Object.entries(params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}
