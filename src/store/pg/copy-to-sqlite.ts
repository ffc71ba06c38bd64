import Database from 'better-sqlite3';
import { AppError } from '../../lib/errors.js';
import { SqliteStore } from '../sqlite-store.js';
import { COPIED_TABLES } from './copy-from-sqlite.js';
import type { PgTarget } from './connection.js';
import type { PgDb } from './db.js';
import { PgStore } from './pg-store.js';

/** PostgreSQL tables that are not rows of the backup: kept by triggers, bookkeeping, or short-lived. */
const NOT_COPIED = new Set([
  'schema_migrations',
  'cert_counts', // kept by triggers on both engines
  'cert_list_version', // kept by triggers on both engines
  'access_state', // copied as one row, below
  'rate_events', // sliding windows of the shared limits: an hour at most, not worth restoring
  'shared_files', // returned as files (the archive holds them as data-dir files)
  'shared_files_state', // the files' version counter, kept by a trigger on shared_files
]);

export interface PgSnapshot {
  tables: { name: string; rows: number }[];
  crlNumber: number | null;
  /** The shared files matching the pattern, as they were in the same snapshot. */
  files: { name: string; mode: number; content: Buffer }[];
}

/**
 * Writes the rows of a PostgreSQL podgate database into a new SQLite file (this podgate's SQLite
 * schema, the same file a SQLite data dir holds), and returns the shared files matching `pattern` (the
 * CA certificates and encrypted keys). Everything is read in one REPEATABLE READ, READ ONLY
 * transaction: one consistent snapshot while replicas keep writing, and nothing written. Each table's
 * row count, the CRL number and the access version are compared between the snapshot and the file.
 * Refuses a table or column this podgate does not know how to carry (a newer schema).
 */
export async function snapshotPgToSqlite(
  target: PgTarget,
  sqliteFile: string,
  pattern: RegExp,
): Promise<PgSnapshot> {
  await SqliteStore.open(sqliteFile).close();
  const dst = new Database(sqliteFile);
  let store: PgStore | undefined;
  try {
    dst.pragma('foreign_keys = OFF'); // rows arrive table by table; checked once at the end
    store = await PgStore.open({ ...target, poolSize: 1 });
    const snapshot = await store.withDb((db) =>
      db.atomic(async (tx) => {
        await tx.exec('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        await refuseUnknownTables(tx);
        const tables: PgSnapshot['tables'] = [];
        const batches: { table: string; cols: string[]; rows: unknown[][] }[] = [];
        for (const table of COPIED_TABLES) {
          const cols = await columnsToCopy(tx, dst, table);
          const rows = (await tx.all<Record<string, unknown>>(`SELECT ${cols.join(', ')} FROM ${table}`)).map(
            (r) => cols.map((c) => sqliteValue(r[c])),
          );
          batches.push({ table, cols, rows });
          tables.push({ name: table, rows: rows.length });
        }
        const access = await tx.get<{
          version: number;
          published_version: number;
          published_hash: string | null;
        }>('SELECT version, published_version, published_hash FROM access_state WHERE id = 1');
        const crl = await tx.get<{ number: number }>('SELECT number FROM crl_state WHERE id = 1');
        const files = (
          await tx.all<{ name: string; mode: number; content: Buffer }>(
            'SELECT name, mode, content FROM shared_files ORDER BY name',
          )
        ).filter((f) => pattern.test(f.name));
        return { tables, batches, access, crlNumber: crl?.number ?? null, files };
      }),
    );
    dst.transaction(() => {
      for (const table of [...COPIED_TABLES].reverse()) dst.prepare(`DELETE FROM ${table}`).run();
      for (const b of snapshot.batches) {
        if (b.rows.length === 0) continue;
        const insert = dst.prepare(
          `INSERT INTO ${b.table} (${b.cols.join(', ')}) VALUES (${b.cols.map(() => '?').join(', ')})`,
        );
        for (const row of b.rows) insert.run(row);
      }
      if (snapshot.access) {
        dst
          .prepare(
            'UPDATE access_state SET version = ?, published_version = ?, published_hash = ? WHERE id = 1',
          )
          .run(snapshot.access.version, snapshot.access.published_version, snapshot.access.published_hash);
      }
    })();
    dst.pragma('foreign_keys = ON');
    const broken = dst.pragma('foreign_key_check') as unknown[];
    if (broken.length > 0)
      throw new AppError(500, 'backup_verify', `the copy breaks ${broken.length} foreign key(s)`);
    verify(dst, snapshot.tables, snapshot.crlNumber);
    return { tables: snapshot.tables, crlNumber: snapshot.crlNumber, files: snapshot.files };
  } finally {
    dst.close();
    await store?.close();
  }
}

async function refuseUnknownTables(tx: PgDb): Promise<void> {
  const names = (
    await tx.all<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
  ).map((r) => r.table_name);
  const unknown = names.filter(
    (n) => !NOT_COPIED.has(n) && !(COPIED_TABLES as readonly string[]).includes(n),
  );
  if (unknown.length > 0) {
    throw new AppError(
      500,
      'backup_table',
      `no backup rule for PostgreSQL table(s) ${unknown.sort().join(', ')}`,
    );
  }
}

/** The PostgreSQL columns of `table`; each must exist in the SQLite schema. */
async function columnsToCopy(tx: PgDb, dst: Database.Database, table: string): Promise<string[]> {
  const pgCols = (
    await tx.all<{ column_name: string }>(
      'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position',
      [table],
    )
  ).map((r) => r.column_name);
  const sqliteCols = new Set(
    (dst.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name),
  );
  const missing = pgCols.filter((c) => !sqliteCols.has(c));
  if (missing.length > 0) {
    throw new AppError(
      500,
      'backup_column',
      `the SQLite schema has no column ${missing.map((c) => `${table}.${c}`).join(', ')}: this podgate cannot back it up`,
    );
  }
  return pgCols;
}

/** The two schemas store the same kinds (text timestamps, 0/1 flags, bytea as blobs); booleans just in case. */
function sqliteValue(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) return v.toISOString();
  return v;
}

function verify(dst: Database.Database, tables: PgSnapshot['tables'], crlNumber: number | null): void {
  for (const t of tables) {
    const n = dst.prepare(`SELECT count(*) FROM ${t.name}`).pluck().get() as number;
    if (n !== t.rows)
      throw new AppError(500, 'backup_verify', `${t.name}: ${t.rows} rows in PostgreSQL, ${n} in the copy`);
  }
  const copied =
    (dst.prepare('SELECT number FROM crl_state WHERE id = 1').pluck().get() as number | undefined) ?? null;
  if (copied !== crlNumber)
    throw new AppError(500, 'backup_verify', `CRL number ${crlNumber} in PostgreSQL, ${copied} in the copy`);
}
