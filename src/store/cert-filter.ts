import { BadRequest } from '../lib/errors.js';
import { CERT_KINDS, CERT_STATUSES } from './cert-rows.js';
import { intAtLeast, oneOf, toIso } from './sql-util.js';
import type { CertQuery } from './types.js';

/**
 * The parts of the certificate list that both engines share: validation of a CertQuery (400 naming
 * the field, the same messages), the filter conditions that are plain SQL on both, the sort column
 * (only these constant expressions ever reach ORDER BY) and the cursor's encoding. Search, the tie
 * breaker (SQLite's rowid, PostgreSQL's serial) and the statements stay with each engine.
 */

export type SortKey = NonNullable<CertQuery['sort']>;

export const SORT_COLUMNS: Record<SortKey, string> = {
  commonName: 'c.common_name',
  // the owner's name kept on the row (migration 013): sorting by it reads an index, no join
  owner: 'c.owner_name',
  notAfter: 'c.not_after',
  createdAt: 'c.created_at',
  status: 'c.status',
};
const SORT_KEYS = Object.keys(SORT_COLUMNS) as SortKey[];
const ORDERS = ['asc', 'desc'] as const;
const MAX_SEARCH = 200;
const MAX_CURSOR = 1000;
const DAY_MS = 86_400_000;

/** The search text to look for, or undefined for none (400 when it is not a string of at most 200). */
export function certSearch(q: CertQuery): string | undefined {
  if (q.search === undefined) return undefined;
  if (typeof q.search !== 'string' || q.search.length > MAX_SEARCH) {
    throw new BadRequest(`search must be a string of at most ${MAX_SEARCH} characters`, 'search');
  }
  return q.search === '' ? undefined : q.search;
}

/** Owner, status, kind and expiry: conditions on alias c with named parameters. */
export function certConditions(q: CertQuery): { conds: string[]; params: Record<string, string | number> } {
  const conds: string[] = [];
  const params: Record<string, string | number> = {};
  if (q.ownerId !== undefined) {
    conds.push('c.owner_id = @ownerId');
    params.ownerId = intAtLeast('ownerId', q.ownerId, 1);
  }
  if (q.status !== undefined) {
    conds.push('c.status = @status');
    params.status = oneOf('status', q.status, CERT_STATUSES);
  }
  if (q.kind !== undefined) {
    conds.push('c.kind = @kind');
    params.kind = oneOf('kind', q.kind, CERT_KINDS);
  }
  if (q.expiringWithinDays !== undefined) {
    const days = q.expiringWithinDays;
    if (typeof days !== 'number' || !Number.isFinite(days) || days < 0 || days > 36_500) {
      throw new BadRequest('expiringWithinDays must be a number from 0 to 36500', 'expiringWithinDays');
    }
    const now = q.now === undefined ? new Date() : q.now;
    conds.push('c.not_after > @now AND c.not_after <= @until');
    params.now = toIso('now', now);
    params.until = new Date(now.getTime() + days * DAY_MS).toISOString();
  }
  return { conds, params };
}

/** The sort column expression and direction (created_at descending by default, ascending once sorted). */
export function certOrder(q: CertQuery): { sortColumn: string; order: 'asc' | 'desc'; dir: 'ASC' | 'DESC' } {
  const sort = q.sort === undefined ? 'createdAt' : oneOf('sort', q.sort, SORT_KEYS);
  const order =
    q.order === undefined ? (q.sort === undefined ? 'desc' : 'asc') : oneOf('order', q.order, ORDERS);
  return { sortColumn: SORT_COLUMNS[sort], order, dir: order === 'asc' ? 'ASC' : 'DESC' };
}

/** A position in a sorted list: the last row's sort value and tie breaker (opaque, base64url JSON). */
export function encodeCursor(value: string, tie: string | number): string {
  return Buffer.from(JSON.stringify([value, tie]), 'utf8').toString('base64url');
}

/** The cursor's sort value and tie breaker; 400 (field cursor) unless `isTie` accepts the breaker. */
export function decodeCursor<T>(cursor: unknown, isTie: (v: unknown) => v is T): { value: string; tie: T } {
  const bad = () => new BadRequest('cursor is not one this list returned', 'cursor');
  if (typeof cursor !== 'string' || cursor.length > MAX_CURSOR || !/^[A-Za-z0-9_-]+$/.test(cursor))
    throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string' || !isTie(parsed[1]))
    throw bad();
  return { value: parsed[0], tie: parsed[1] };
}
