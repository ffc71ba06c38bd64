import { existsSync, readFileSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { AppError, BadRequest, Conflict } from '../../lib/errors.js';
import { migrations as sqliteMigrations } from '../migrations/index.js';
import type { PgDb } from './db.js';
import { PgStore } from './pg-store.js';
import { matchingFiles, pushSharedFiles } from './shared-files.js';
import type { PgTarget } from './connection.js';

/** Tables copied, parents before children (foreign keys hold at every insert). */
export const COPIED_TABLES = [
  'users',
  'certificates',
  'crl_state',
  'audit_log',
  'settings',
  'sessions',
  'api_tokens',
  'pending_revocations',
  'gateways',
  'oidc_identities',
  'local_groups',
  'local_group_members',
  'access_rules',
  'device_addresses',
  'import_links',
  'vpn_sessions',
] as const;

/** Identity columns whose sequence must move past the copied ids. */
const IDENTITIES: Record<string, string> = {
  users: 'id',
  audit_log: 'id',
  api_tokens: 'id',
  local_groups: 'id',
  import_links: 'id',
  vpn_sessions: 'id',
};

/** SQLite-only tables (kept by triggers, or full-text search) and bookkeeping that is not copied. */
const NOT_COPIED =
  /^(sqlite_|schema_migrations$|cert_counts$|cert_list_version$|access_state$|certificates_search)/;

export interface CopyReport {
  /** Rows per table, equal on both sides (checked after the copy). */
  tables: { name: string; rows: number }[];
  crlNumber: number | null;
  accessVersion: number;
  /** Data-dir files stored in shared_files. */
  files: string[];
}

const BATCH_ROWS = 200;

/**
 * Copies a SQLite podgate database (and the named data-dir files, e.g. the CA certificate and its
 * encrypted key) into an empty PostgreSQL database, in one PostgreSQL transaction, then reads both
 * back and compares every table's row count, the CRL number and the access bundle version. The SQLite
 * file is read into memory first (one snapshot): nothing in the data dir is changed or created. Refuses a SQLite schema other
 * than this podgate's (open it with this podgate once, which upgrades it), a column the PostgreSQL
 * schema lacks, and a PostgreSQL database that already holds users, certificates or audit entries.
 */
export async function copySqliteToPg(
  sqliteFile: string,
  target: PgTarget,
  files: { dir: string; pattern: RegExp },
): Promise<CopyReport> {
  const src = readOnlyCopy(sqliteFile);
  let store: PgStore | undefined;
  try {
    checkSqliteVersion(src);
    const tables = (
      src.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]
    ).filter((t) => !NOT_COPIED.test(t));
    const unknown = tables.filter((t) => !(COPIED_TABLES as readonly string[]).includes(t));
    if (unknown.length > 0) {
      throw new AppError(
        500,
        'store_migrate_table',
        `no PostgreSQL copy rule for table(s) ${unknown.join(', ')}`,
      );
    }
    store = await PgStore.open(target);
    const report = await store.withDb(async (db) => {
      await refuseNonEmpty(db, target);
      await db.atomic(async (tx) => {
        for (const table of COPIED_TABLES) await copyTable(src, tx, table);
        for (const [table, col] of Object.entries(IDENTITIES)) {
          await tx.run(
            `SELECT setval(pg_get_serial_sequence('${table}', '${col}'), coalesce((SELECT max(${col}) FROM ${table}), 0) + 1, false)`,
          );
        }
        const access = src
          .prepare('SELECT version, published_version, published_hash FROM access_state WHERE id = 1')
          .get() as { version: number; published_version: number; published_hash: string | null } | undefined;
        if (access) {
          await tx.run(
            'UPDATE access_state SET version = ?, published_version = ?, published_hash = ? WHERE id = 1',
            [access.version, access.published_version, access.published_hash],
          );
        }
        await pushSharedFiles(tx, files.dir, files.pattern);
      });
      return verify(src, db, matchingFiles(files.dir, files.pattern));
    });
    return report;
  } finally {
    src.close();
    await store?.close();
  }
}

/**
 * The SQLite database as an in-memory copy of its file: nothing is written next to it (a read-only
 * connection to a WAL database would still create -wal and -shm files). A write-ahead log with
 * content means a podgate is running on it or died without a checkpoint: stop podgate (or start and
 * stop it once), then migrate.
 */
function readOnlyCopy(file: string): Database.Database {
  if (!existsSync(file)) throw new BadRequest(`${file} does not exist`, 'dataDir');
  const wal = `${file}-wal`;
  if (existsSync(wal) && statSync(wal).size > 0) {
    throw new Conflict(
      `${wal} holds changes not yet in the database file: stop every podgate using this data dir first`,
      'dataDir',
    );
  }
  const bytes = readFileSync(file);
  // file format bytes 18-19: 2 = WAL, which an in-memory database cannot use; 1 = rollback journal
  if (bytes.length >= 20 && bytes[18] === 2) {
    bytes[18] = 1;
    bytes[19] = 1;
  }
  return new Database(bytes, { readonly: true });
}

function checkSqliteVersion(src: Database.Database): void {
  const latest = sqliteMigrations[sqliteMigrations.length - 1]!.version;
  let version = 0;
  try {
    version = (src.prepare('SELECT max(version) FROM schema_migrations').pluck().get() as number | null) ?? 0;
  } catch {
    throw new BadRequest('the source is not a podgate database (no schema_migrations table)', 'dataDir');
  }
  if (version !== latest) {
    throw new BadRequest(
      `the source database has schema version ${version}, this podgate writes ${latest}: ${
        version < latest
          ? 'start this podgate once on the data dir (it upgrades it), then migrate'
          : 'use a newer podgate'
      }`,
      'dataDir',
    );
  }
}

async function refuseNonEmpty(db: PgDb, target: PgTarget): Promise<void> {
  const r = await db.get<{ n: number }>(
    `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM certificates) + (SELECT count(*) FROM audit_log) AS n`,
  );
  if (r!.n > 0) {
    throw new Conflict(
      `${target.display} already holds podgate data (users, certificates or audit entries): migrate into an empty database`,
      'store.url',
    );
  }
}

async function copyTable(src: Database.Database, tx: PgDb, table: string): Promise<void> {
  const srcCols = (src.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
  const pgCols = new Set(
    (
      await tx.all<{ column_name: string }>(
        'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?',
        [table],
      )
    ).map((r) => r.column_name),
  );
  const missing = srcCols.filter((c) => !pgCols.has(c));
  if (missing.length > 0) {
    throw new AppError(
      500,
      'store_migrate_column',
      `the PostgreSQL schema has no column ${missing.map((c) => `${table}.${c}`).join(', ')}: this podgate cannot copy it`,
    );
  }
  const cols = srcCols.join(', ');
  const rows = src.prepare(`SELECT ${cols} FROM ${table}`).raw().all() as unknown[][];
  for (let i = 0; i < rows.length; i += BATCH_ROWS) {
    const batch = rows.slice(i, i + BATCH_ROWS);
    const values: unknown[] = [];
    const tuples = batch.map((row) => {
      const marks = row.map((v) => {
        values.push(typeof v === 'bigint' ? Number(v) : v);
        return '?';
      });
      return `(${marks.join(', ')})`;
    });
    await tx.run(`INSERT INTO ${table} (${cols}) VALUES ${tuples.join(', ')}`, values);
  }
}

async function verify(src: Database.Database, db: PgDb, files: string[]): Promise<CopyReport> {
  const tables: CopyReport['tables'] = [];
  for (const table of COPIED_TABLES) {
    const a = src.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
    const b = (await db.get<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))!.n;
    if (a !== b)
      throw new AppError(500, 'store_migrate_verify', `${table}: ${a} rows in SQLite, ${b} in PostgreSQL`);
    tables.push({ name: table, rows: a });
  }
  const crlA =
    (src.prepare('SELECT number FROM crl_state WHERE id = 1').pluck().get() as number | undefined) ?? null;
  const crlB =
    (await db.get<{ number: number }>('SELECT number FROM crl_state WHERE id = 1'))?.number ?? null;
  if (crlA !== crlB)
    throw new AppError(500, 'store_migrate_verify', `CRL number ${crlA} in SQLite, ${crlB} in PostgreSQL`);
  const accessA =
    (src.prepare('SELECT version FROM access_state WHERE id = 1').pluck().get() as number | undefined) ?? 1;
  const accessB = (await db.get<{ version: number }>('SELECT version FROM access_state WHERE id = 1'))!
    .version;
  if (accessA !== accessB) {
    throw new AppError(
      500,
      'store_migrate_verify',
      `access version ${accessA} in SQLite, ${accessB} in PostgreSQL`,
    );
  }
  const counts = await db.all<{ status: string; n: number; real: number }>(
    'SELECT status, n, (SELECT count(*) FROM certificates c WHERE c.status = k.status) AS real FROM cert_counts k',
  );
  for (const c of counts) {
    if (c.n !== c.real)
      throw new AppError(500, 'store_migrate_verify', `cert_counts ${c.status}: ${c.n} != ${c.real}`);
  }
  return { tables, crlNumber: crlA, accessVersion: accessA, files };
}
