import { BadRequest } from '../../lib/errors.js';
import { CERT_KINDS, CERT_SELECT, CERT_STATUSES, toCert, type CertRow } from '../cert-rows.js';
import { intAtLeast, likeSubstring, oneOf, toIso } from '../sql-util.js';
import type { CertQuery, CertRecord } from '../types.js';
import type { PgDb } from './db.js';

type SortKey = NonNullable<CertQuery['sort']>;

/** The only column expressions that ever reach ORDER BY; user input only selects among them. */
const SORT_COLUMNS: Record<SortKey, string> = {
  commonName: 'c.common_name',
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

/** A position in a sorted list: the last row's sort value and serial (opaque, base64url JSON). */
function encodeCursor(value: string, serial: string): string {
  return Buffer.from(JSON.stringify([value, serial]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: unknown): { value: string; serial: string } {
  const bad = () => new BadRequest('cursor is not one this list returned', 'cursor');
  if (typeof cursor !== 'string' || cursor.length > MAX_CURSOR || !/^[A-Za-z0-9_-]+$/.test(cursor))
    throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== 'string' ||
    typeof parsed[1] !== 'string'
  ) {
    throw bad();
  }
  return { value: parsed[0], serial: parsed[1] };
}

/**
 * The statement of listCerts on PostgreSQL: the filters, sorts and pages of ../cert-query.ts (same validation, same
 * messages). The serial breaks ties (SQLite uses the rowid); substring search is ILIKE on the three
 * name columns, served by the pg_trgm index. Total and page come from one statement (one snapshot).
 */
function certListStatement(q: CertQuery): {
  sql: string;
  countSql: string;
  params: Record<string, unknown>;
  pageParams: Record<string, unknown>;
  paged: boolean;
  limit: number | null;
} {
  const conds: string[] = [];
  const params: Record<string, unknown> = {};
  if (q.search !== undefined) {
    if (typeof q.search !== 'string' || q.search.length > MAX_SEARCH) {
      throw new BadRequest(`search must be a string of at most ${MAX_SEARCH} characters`, 'search');
    }
    if (q.search !== '') {
      conds.push(
        '(c.common_name ILIKE @search OR c.device_name ILIKE @search OR c.owner_name ILIKE @search)',
      );
      params.search = likeSubstring(q.search);
    }
  }
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
  const sort = q.sort === undefined ? 'createdAt' : oneOf('sort', q.sort, SORT_KEYS);
  const order =
    q.order === undefined ? (q.sort === undefined ? 'desc' : 'asc') : oneOf('order', q.order, ORDERS);
  const dir = order === 'asc' ? 'ASC' : 'DESC';
  const sortColumn = SORT_COLUMNS[sort];
  const orderBy = `ORDER BY ${sortColumn} ${dir}, c.serial ${dir}`;
  const paged = q.limit !== undefined || q.offset !== undefined || q.after !== undefined;
  const limit = q.limit === undefined ? null : intAtLeast('limit', q.limit, 0);
  const pageParams: Record<string, unknown> = {};
  let page = '';
  if (paged) {
    page = 'LIMIT @limit::bigint OFFSET @offset::bigint';
    pageParams.limit = limit;
    pageParams.offset = q.offset === undefined ? 0 : intAtLeast('offset', q.offset, 0);
  }
  const pageConds = [...conds];
  if (q.after !== undefined) {
    const { value, serial } = decodeCursor(q.after);
    pageConds.push(
      `(${sortColumn}, c.serial) ${order === 'asc' ? '>' : '<'} (@afterValue::text, @afterSerial::text)`,
    );
    pageParams.afterValue = value;
    pageParams.afterSerial = serial;
  }
  const where = conds.length ? `WHERE ${conds.join(' AND ')}` : '';
  const pageWhere = pageConds.length ? `WHERE ${pageConds.join(' AND ')}` : '';
  const countSql =
    conds.length === 0 || (conds.length === 1 && params.status !== undefined)
      ? `SELECT coalesce(sum(n), 0) FROM cert_counts${params.status !== undefined ? ' WHERE status = @status' : ''}`
      : `SELECT count(*) FROM certificates c ${where}`;
  const select = CERT_SELECT.replace(
    /^SELECT /,
    `SELECT (${countSql}) AS total_rows, ${sortColumn} AS sort_key, `,
  );
  return { sql: `${select} ${pageWhere} ${orderBy} ${page}`, countSql, params, pageParams, paged, limit };
}

/**
 * listCerts on PostgreSQL (see {@link certListStatement}): the page and its total from one statement,
 * the total alone when the page is empty.
 */
export async function listCerts(
  db: PgDb,
  q: CertQuery = {},
): Promise<{ total: number; items: CertRecord[]; nextCursor?: string }> {
  const { sql, countSql, params, pageParams, paged, limit } = certListStatement(q);
  const rows = await db.all<CertRow & { total_rows: number; sort_key: string }>(sql, {
    ...params,
    ...pageParams,
  });
  let total: number;
  if (rows.length > 0) total = Number(rows[0]!.total_rows);
  else {
    const r = await db.get<{ n: number }>(
      countSql.replace(/^SELECT (.*?) FROM/, 'SELECT $1 AS n FROM'),
      params,
    );
    total = Number(r?.n ?? 0);
  }
  const last = rows[rows.length - 1];
  const full = paged && limit !== null && limit > 0 && rows.length === limit;
  return {
    total,
    items: rows.map(toCert),
    ...(full && last ? { nextCursor: encodeCursor(last.sort_key, last.serial) } : {}),
  };
}

/** EXPLAIN of the statement listCerts runs for q (tests assert that it reads indexes). */
export async function explainCertList(db: PgDb, q: CertQuery = {}): Promise<string[]> {
  const { sql, params, pageParams } = certListStatement(q);
  const rows = await db.all<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, { ...params, ...pageParams });
  return rows.map((r) => r['QUERY PLAN']);
}
