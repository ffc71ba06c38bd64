import { certConditions, certOrder, certSearch, decodeCursor, encodeCursor } from '../cert-filter.js';
import { CERT_SELECT, toCert, type CertRow } from '../cert-rows.js';
import { intAtLeast, likeSubstring } from '../sql-util.js';
import type { CertQuery, CertRecord } from '../types.js';
import type { PgDb } from './db.js';

const isSerial = (v: unknown): v is string => typeof v === 'string';

/**
 * The statement of listCerts on PostgreSQL: the filters, sorts and pages of ../cert-query.ts (same
 * validation, same messages). The serial breaks ties (SQLite uses the rowid); substring search is ILIKE
 * on the three name columns, served by the pg_trgm index. Total and page come from one statement (one
 * snapshot).
 */
function certListStatement(q: CertQuery): {
  sql: string;
  countSql: string;
  params: Record<string, unknown>;
  pageParams: Record<string, unknown>;
  paged: boolean;
  limit: number | null;
} {
  const { conds, params } = certConditions(q);
  const search = certSearch(q);
  if (search !== undefined) {
    conds.unshift(
      '(c.common_name ILIKE @search OR c.device_name ILIKE @search OR c.owner_name ILIKE @search)',
    );
    params.search = likeSubstring(search);
  }
  const { sortColumn, order, dir } = certOrder(q);
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
    const { value, tie: serial } = decodeCursor(q.after, isSerial);
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
