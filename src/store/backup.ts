import Database from 'better-sqlite3';
import { AppError } from '../lib/errors.js';

/** What a database copy holds, read from the copy itself after the integrity check passed. */
export interface DatabaseSummary {
  schemaVersion: number;
  certificates: number;
  revoked: number;
  crlNumber: number | null;
}

/**
 * Copies a live database with SQLite's online backup API, on a connection of its own. Other processes
 * (`serve`, `server run`, CLI writers) keep writing meanwhile: in WAL mode a step only reads, and a
 * write by another connection between steps makes SQLite restart the copy, so the result is always one
 * committed state. After the first step the rest is copied in a single step, which cannot be
 * interrupted, so a busy writer cannot make the copy restart forever.
 */
export async function backupDatabase(sourceFile: string, destinationFile: string): Promise<void> {
  const db = new Database(sourceFile, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(destinationFile, { progress: ({ totalPages }) => Math.max(totalPages, 100) * 2 });
  } finally {
    db.close();
  }
}

/**
 * Opens a database file that is not in use (a fresh copy, or one about to be restored), runs
 * `integrity_check` and reads what it holds. Throws a 400 naming the problem when the file is not a
 * sound podgate database. The file is left checkpointed, without -wal or -shm files.
 */
export function inspectDatabase(file: string): DatabaseSummary {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true });
  } catch (err) {
    throw new AppError(400, 'bad_database', 'the database in the backup cannot be opened', { cause: err });
  }
  try {
    let check: unknown;
    try {
      check = db.pragma('integrity_check', { simple: true });
    } catch (err) {
      throw new AppError(400, 'bad_database', 'the database in the backup is not an SQLite database', {
        cause: err,
      });
    }
    if (check !== 'ok') {
      throw new AppError(
        400,
        'bad_database',
        `the database in the backup fails integrity_check: ${String(check)}`,
      );
    }
    const hasTable = (name: string) =>
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").pluck().get(name) !==
      undefined;
    if (!hasTable('schema_migrations') || !hasTable('certificates')) {
      throw new AppError(400, 'bad_database', 'the database in the backup is not a podgate database');
    }
    const n = (sql: string) => Number(db.prepare(sql).pluck().get() ?? 0);
    const summary: DatabaseSummary = {
      schemaVersion: n('SELECT max(version) FROM schema_migrations'),
      certificates: n('SELECT count(*) FROM certificates'),
      revoked: n("SELECT count(*) FROM certificates WHERE status = 'revoked'"),
      crlNumber: hasTable('crl_state')
        ? ((db.prepare('SELECT number FROM crl_state WHERE id = 1').pluck().get() as number | undefined) ??
          null)
        : null,
    };
    db.pragma('wal_checkpoint(TRUNCATE)');
    return summary;
  } finally {
    db.close();
  }
}
