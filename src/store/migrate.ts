import type { Database } from 'better-sqlite3';
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import type { Migration } from './migrations/index.js';

const log = logger.child({ module: 'store' });

/** Throws unless versions run 1, 2, 3, ... without gaps or repeats (a mistake caught at start, not in a schema). */
export function checkMigrationList(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration list: position ${i + 1} holds version ${m.version} (${m.name})`);
    }
  });
}

/**
 * Brings the schema up to the last migration and returns the resulting version.
 * Each step runs in its own BEGIN IMMEDIATE transaction and re-reads the applied versions inside it,
 * so two processes opening the same file at once apply every step exactly once.
 * Refuses a database written by a newer podgate (a version this build does not know).
 */
export function migrate(db: Database, list: readonly Migration[]): number {
  checkMigrationList(list);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  ) STRICT`);
  const maxApplied = db.prepare('SELECT max(version) AS v FROM schema_migrations');
  const isApplied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').pluck();
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');

  const current = (maxApplied.get() as { v: number | null }).v ?? 0;
  if (current > list.length) {
    throw new AppError(
      500,
      'store_too_new',
      `the database has schema version ${current}, this podgate knows up to ${list.length}: upgrade podgate`,
    );
  }
  const step = db.transaction((m: Migration) => {
    if (isApplied.get(m.version) !== undefined) return; // another process got here first
    db.exec(m.up);
    record.run(m.version, m.name, new Date().toISOString());
    // user_version mirrors the table so that `sqlite3 podgate.db 'PRAGMA user_version'` tells the schema
    db.pragma(`user_version = ${m.version}`);
  });
  const pending = list.filter((m) => m.version > current);
  for (const m of pending) step.immediate(m);
  if (pending.length > 0) {
    log.info({ from: current, to: list.length, applied: pending.map((m) => m.name) }, 'schema migrated');
  }
  return list.length;
}
