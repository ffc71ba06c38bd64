import { certConditions, certOrder, certSearch, decodeCursor, encodeCursor } from '../cert-filter.js';
import { CERT_SELECT, toCert, type CertRow } from '../cert-rows.js';
import { CountMemo, countKey } from '../count-memo.js';
import { intAtLeast, likeSubstring } from '../sql-util.js';
import type { CertQuery, CertRecord } from '../types.js';
import type { PgDb } from './db.js';

const isSerial = (v: unknown): v is string => typeof v === 'string';

const MAX_ATTEMPTS = 3;
const VERSION = '(SELECT n FROM cert_list_version WHERE id = 1)';

/**
 * The statements of listCerts on PostgreSQL: the filters, sorts and pages of ../cert-query.ts (same
 * validation, same messages). The serial breaks ties (SQLite uses the rowid); substring search is ILIKE
 * on the three name columns, each served by its pg_trgm index (PostgreSQL 004). The page and the count
 * each read the list's version in their own snapshot.
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
    `SELECT ${VERSION} AS list_version, ${sortColumn} AS sort_key, `,
  );
  return { sql: `${select} ${pageWhere} ${orderBy} ${page}`, countSql, params, pageParams, paged, limit };
}

/**
 * listCerts on PostgreSQL (see {@link certListStatement}): the page, then the total from the memo when
 * the list's version is the one the total was counted at, else counted (one statement with the
 * version). Should a write land between the two statements (versions differ), both are read again, up
 * to MAX_ATTEMPTS times (then the total may differ from the page by those writes, as for two requests).
 * Without a memo (in a transaction) the total is counted every time.
 */
export async function listCerts(
  db: PgDb,
  q: CertQuery = {},
  memo?: CountMemo,
): Promise<{ total: number; items: CertRecord[]; nextCursor?: string }> {
  const { sql, countSql, params, pageParams, paged, limit } = certListStatement(q);
  const key = countKey(countSql, params);
  for (let attempt = 1; ; attempt++) {
    const rows = await db.all<CertRow & { list_version: string; sort_key: string }>(sql, {
      ...params,
      ...pageParams,
    });
    const pageVersion = rows.length > 0 ? Number(rows[0]!.list_version) : undefined;
    let total = pageVersion === undefined ? undefined : memo?.get(key, pageVersion);
    if (total === undefined) {
      const r = await db.get<{ v: string; n: string }>(`SELECT ${VERSION} AS v, (${countSql}) AS n`, params);
      const version = Number(r!.v);
      if (pageVersion !== undefined && version !== pageVersion && memo && attempt < MAX_ATTEMPTS) continue;
      total = Number(r!.n);
      memo?.set(key, version, total);
    }
    const last = rows[rows.length - 1];
    const full = paged && limit !== null && limit > 0 && rows.length === limit;
    return {
      total,
      items: rows.map(toCert),
      ...(full && last ? { nextCursor: encodeCursor(last.sort_key, last.serial) } : {}),
    };
  }
}

/** EXPLAIN of the statements listCerts runs for q, the page and the count (tests assert that they read indexes). */
export async function explainCertList(
  db: PgDb,
  q: CertQuery = {},
): Promise<{ page: string[]; count: string[] }> {
  const { sql, countSql, params, pageParams } = certListStatement(q);
  const explain = async (stmt: string, p: Record<string, unknown>) =>
    (await db.all<{ 'QUERY PLAN': string }>(`EXPLAIN ${stmt}`, p)).map((r) => r['QUERY PLAN']);
  return { page: await explain(sql, { ...params, ...pageParams }), count: await explain(countSql, params) };
}
