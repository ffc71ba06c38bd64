import type { Database, Statement } from 'better-sqlite3';
import { certConditions, certOrder, certSearch, decodeCursor, encodeCursor } from './cert-filter.js';
import { CERT_SELECT, toCert, type CertRow } from './cert-rows.js';
import { CountMemo, countKey } from './count-memo.js';
import { intAtLeast, likeSubstring } from './sql-util.js';
import type { CertQuery, CertRecord } from './types.js';

/** Trigram search needs 3 characters; shorter strings are looked for in the search table row by row. */
const MIN_TRIGRAM = 3;

interface Built {
  where: string;
  /** WHERE of the page: `where` plus the cursor's position. */
  pageWhere: string;
  orderBy: string;
  page: string;
  /** The sort column expression (its value goes into the next cursor). */
  sortColumn: string;
  /** The count reads cert_counts: no filter but status. */
  countFromCounter: boolean;
  /** Parameters of the WHERE clause (shared by the count). */
  params: Record<string, string | number>;
  /** Parameters of the cursor and LIMIT clauses. */
  pageParams: Record<string, string | number>;
  /** Whether the caller asked for a page (then a next cursor is returned when the page is full). */
  paged: boolean;
  limit: number;
}

const isRowid = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1;

/** An FTS5 phrase: the whole text as one quoted string (substring match with the trigram tokenizer). */
function ftsPhrase(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

/** Validates q (400 naming the field) and turns it into SQL fragments made only of constants plus named parameters. */
function build(q: CertQuery): Built {
  const { conds, params } = certConditions(q);
  const search = certSearch(q);
  if (search !== undefined) {
    // the trigram index (migration 013) finds substrings of 3+ characters; shorter ones are looked for in
    // the search table's own rows (never the certificates table)
    if ([...search].length >= MIN_TRIGRAM) {
      conds.unshift(
        'c.serial IN (SELECT serial FROM certificates_search WHERE certificates_search MATCH @search)',
      );
      params.search = ftsPhrase(search);
    } else {
      conds.unshift(
        `c.serial IN (SELECT serial FROM certificates_search
           WHERE common_name LIKE @search ESCAPE '\\' OR device_name LIKE @search ESCAPE '\\'
             OR owner_name LIKE @search ESCAPE '\\')`,
      );
      params.search = likeSubstring(search);
    }
  }
  const { sortColumn, order, dir } = certOrder(q);
  // rowid breaks ties so that pages never overlap or skip rows; every index ends in rowid, so
  // "ORDER BY indexed_column, rowid" is still read straight from the index
  const orderBy = `ORDER BY ${sortColumn} ${dir}, c.rowid ${dir}`;
  let page = '';
  const pageParams: Record<string, string | number> = {};
  const paged = q.limit !== undefined || q.offset !== undefined || q.after !== undefined;
  const limit = q.limit === undefined ? -1 : intAtLeast('limit', q.limit, 0);
  if (paged) {
    pageParams.limit = limit;
    pageParams.offset = q.offset === undefined ? 0 : intAtLeast('offset', q.offset, 0);
    page = 'LIMIT @limit OFFSET @offset';
  }
  const pageConds = [...conds];
  if (q.after !== undefined) {
    // keyset pagination: rows after the cursor's (value, rowid) in this order, read from the index
    const { value, tie: rowid } = decodeCursor(q.after, isRowid);
    pageConds.push(`(${sortColumn}, c.rowid) ${order === 'asc' ? '>' : '<'} (@afterValue, @afterRowid)`);
    pageParams.afterValue = value;
    pageParams.afterRowid = rowid;
  }
  const where = conds.length ? `WHERE ${conds.join(' AND ')}` : '';
  return {
    where,
    pageWhere: pageConds.length ? `WHERE ${pageConds.join(' AND ')}` : '',
    orderBy,
    page,
    sortColumn,
    countFromCounter: conds.length === 0 || (conds.length === 1 && params.status !== undefined),
    params,
    pageParams,
    paged,
    limit,
  };
}

/** What listCerts returns: the page, the total before paging, and where the next page starts. */
export interface CertPage {
  total: number;
  items: CertRecord[];
  /** Pass as `after` for the next page; set when a page was asked for and this one is full. */
  nextCursor?: string;
}

/**
 * listCerts: the filter, sort and page of CertQuery, plus the total before paging.
 * Statements are prepared once per distinct shape of query (a few dozen at most) and cached.
 * Every sort, filter and search reads an index (migration 013; the plans are asserted by
 * test/integration/store/cert-list-plans.test.ts). Every view is served the same way: its page by one
 * statement, its total by one count statement (cert_counts when the filter is status alone, else an
 * index) counted once per version of the list ({@link CountMemo}), not once per request.
 */
export class CertLister {
  private readonly cache = new Map<string, Statement>();
  // page, version and count in one snapshot, so total and items agree even while another process writes
  private readonly read: (b: Built, memo: CountMemo | undefined) => CertPage;

  constructor(
    private readonly db: Database,
    private readonly memo = new CountMemo(),
  ) {
    this.read = db.transaction((b: Built, memo: CountMemo | undefined) => {
      const rows = this.stmt(this.pageSql(b)).all({ ...b.params, ...b.pageParams }) as (CertRow & {
        row_id: number;
        sort_key: string;
      })[];
      const last = rows[rows.length - 1];
      const full = b.paged && b.limit > 0 && rows.length === b.limit;
      return {
        total: this.total(b, memo),
        items: rows.map(toCert),
        ...(full && last ? { nextCursor: encodeCursor(last.sort_key, last.row_id) } : {}),
      };
    });
  }

  list(q: CertQuery = {}): CertPage {
    // inside a transaction the version may count writes that a rollback takes back: count afresh
    return this.read(build(q), this.db.inTransaction ? undefined : this.memo);
  }

  /**
   * EXPLAIN QUERY PLAN details for q (tests assert them): the count, the selection of the page's row ids
   * (where the work is) and the whole page statement.
   */
  plans(q: CertQuery = {}): { count: string[]; select: string[]; page: string[] } {
    const b = build(q);
    const plan = (sql: string, params: object) =>
      (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail);
    const all = { ...b.params, ...b.pageParams };
    return {
      count: plan(this.countSql(b), b.params),
      select: plan(`SELECT c.rowid FROM certificates c ${b.pageWhere} ${b.orderBy} ${b.page}`, all),
      page: plan(this.pageSql(b), all),
    };
  }

  /** The view's total: from the memo when the list has not changed since it was counted. */
  private total(b: Built, memo: CountMemo | undefined): number {
    const sql = this.countSql(b);
    const count = () => this.stmt(sql).pluck().get(b.params) as number;
    if (!memo) return count();
    const version = this.stmt('SELECT n FROM cert_list_version WHERE id = 1').pluck().get() as number;
    const key = countKey(sql, b.params);
    const known = memo.get(key, version);
    if (known !== undefined) return known;
    const total = count();
    memo.set(key, version, total);
    return total;
  }

  private countSql(b: Built): string {
    if (b.countFromCounter) {
      return b.params.status === undefined
        ? 'SELECT coalesce(sum(n), 0) FROM cert_counts'
        : 'SELECT coalesce(sum(n), 0) FROM cert_counts WHERE status = @status';
    }
    return `SELECT count(*) FROM certificates c ${b.where}`;
  }

  private pageSql(b: Built): string {
    const select = CERT_SELECT.replace(/^SELECT /, `SELECT c.rowid AS row_id, ${b.sortColumn} AS sort_key, `);
    // A page picks its row ids first (walking narrow index entries), then reads only those rows: sorting
    // whole rows, PEM included, made deep pages and non-indexed sorts 10-35x slower at 10,000 rows.
    return b.page
      ? `${select} WHERE c.rowid IN (SELECT c.rowid FROM certificates c ${b.pageWhere} ${b.orderBy} ${b.page}) ${b.orderBy}`
      : `${select} ${b.pageWhere} ${b.orderBy}`;
  }

  private stmt(sql: string): Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }
}
