import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { AppError, BadRequest, Conflict } from '../../lib/errors.js';

/** A query's parameters: positional for `?` placeholders, or named for `@name` ones (SQLite's forms). */
export type Params = readonly unknown[] | Readonly<Record<string, unknown>>;

interface Converted {
  text: string;
  /** For named parameters: the name of each $n, in order. */
  names?: string[];
}

const cache = new Map<string, Converted>();

/**
 * Turns SQLite-style placeholders (`?` or `@name`) into PostgreSQL's `$n`, outside quoted literals,
 * so that the statements read like their SQLite twins. Cached per statement text (all are constants).
 */
export function convert(sql: string, named: boolean): Converted {
  const key = `${named ? 'n' : 'p'}${sql}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const names: string[] = [];
  let out = '';
  let n = 0;
  let quoted = false;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    if (ch === "'") quoted = !quoted;
    if (!quoted && !named && ch === '?') {
      out += `$${++n}`;
      continue;
    }
    if (!quoted && named && ch === '@') {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i + 1));
      if (m) {
        let idx = names.indexOf(m[0]);
        if (idx < 0) {
          names.push(m[0]);
          idx = names.length - 1;
        }
        out += `$${idx + 1}`;
        i += m[0].length;
        continue;
      }
    }
    out += ch;
  }
  const converted = named ? { text: out, names } : { text: out };
  cache.set(key, converted);
  return converted;
}

/** SQLSTATE of a driver error (23505 unique, 23503 foreign key, 40001 serialization, …). */
export function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** The constraint a 23xxx error names. */
export function pgConstraint(err: unknown): string | undefined {
  return (err as { constraint?: string } | null)?.constraint;
}

export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';

/**
 * One way into the database for the repositories: the pool (each call on its own connection, each
 * `atomic` a transaction of its own), or one client inside a transaction (each `atomic` a savepoint,
 * so a statement that fails on a constraint leaves the outer transaction usable).
 */
export class PgDb {
  /** Savepoints of this handle run one at a time (nested ones get a handle of their own). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly conn: Pool | PoolClient,
    private readonly pool: Pool,
    readonly inTransaction: boolean,
    private readonly counter = { savepoints: 0 },
  ) {}

  async query<R extends QueryResultRow>(
    sql: string,
    params: Params = [],
  ): Promise<{ rows: R[]; rowCount: number }> {
    let text: string;
    let values: unknown[];
    if (Array.isArray(params)) {
      text = convert(sql, false).text;
      values = params as unknown[];
    } else {
      const c = convert(sql, true);
      text = c.text;
      const named = params as Record<string, unknown>;
      values = c.names!.map((n) => {
        if (!(n in named)) throw new Error(`no value for @${n}`);
        return named[n];
      });
    }
    const r = await this.conn.query<R>(text, values);
    return { rows: r.rows, rowCount: r.rowCount ?? 0 };
  }

  /** Runs SQL text as it is (several statements allowed, no parameters): schema steps. */
  async exec(sql: string): Promise<void> {
    await this.conn.query(sql);
  }

  async all<R extends QueryResultRow>(sql: string, params?: Params): Promise<R[]> {
    return (await this.query<R>(sql, params)).rows;
  }

  async get<R extends QueryResultRow>(sql: string, params?: Params): Promise<R | undefined> {
    return (await this.query<R>(sql, params)).rows[0];
  }

  /** Rows changed. */
  async run(sql: string, params?: Params): Promise<number> {
    return (await this.query(sql, params)).rowCount;
  }

  /**
   * Runs fn atomically: a transaction of its own on the pool (READ COMMITTED, the server default), a
   * savepoint inside a transaction. A throw rolls back what fn did and is passed on.
   */
  async atomic<R>(fn: (db: PgDb) => Promise<R>): Promise<R> {
    if (this.inTransaction) {
      const run = this.queue.then(() => this.savepoint(fn));
      this.queue = run.catch(() => undefined);
      return run;
    }
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        const result = await fn(new PgDb(client, this.pool, true));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  private async savepoint<R>(fn: (db: PgDb) => Promise<R>): Promise<R> {
    const name = `sp${++this.counter.savepoints}`;
    const client = this.conn as PoolClient;
    await client.query(`SAVEPOINT ${name}`);
    try {
      const result = await fn(new PgDb(client, this.pool, true, this.counter));
      await client.query(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (err) {
      await client.query(`ROLLBACK TO SAVEPOINT ${name}`);
      throw err;
    }
  }
}

/**
 * Takes the transaction-scoped advisory lock `name` (one of ../locks.ts): waits while another
 * transaction holds it, and holds it until this transaction ends (commit or rollback; a savepoint's
 * rollback does not release it). Refused outside a transaction, where it would be released at once.
 */
export async function lockInTransaction(db: PgDb, name: string): Promise<void> {
  if (!db.inTransaction) {
    throw new AppError(500, 'store_lock_outside_tx', `lock '${name}' taken outside a transaction`);
  }
  await db.run('SELECT pg_advisory_xact_lock(hashtext(?))', [name]);
}

/** Maps a unique violation to a Conflict and a foreign-key violation to a BadRequest, naming `field`. */
export function constraintError(
  err: unknown,
  map: { unique?: () => Conflict; foreignKey?: () => BadRequest | Conflict },
): unknown {
  const code = pgCode(err);
  if (code === UNIQUE_VIOLATION && map.unique) return map.unique();
  if (code === FOREIGN_KEY_VIOLATION && map.foreignKey) return map.foreignKey();
  return err;
}
