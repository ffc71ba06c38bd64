import type { Database } from 'better-sqlite3';
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import type { Migration } from './migrations/index.js';

const log = logger.child({ module: 'store' });

/**
 * Throws unless versions strictly increase (a mistake caught at start, not in a schema). Gaps are
 * allowed: feature branches get their numbers up front, and every version missing from the database
 * is applied in order, so a database from a branch with 1-3 and 7 later gains 4-6 as well.
 */
export function checkMigrationList(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    const prev = i === 0 ? 0 : list[i - 1]!.version;
    if (!Number.isInteger(m.version) || m.version <= prev) {
      throw new Error(
        `migration list: position ${i + 1} holds version ${m.version} (${m.name}) after ${prev}`,
      );
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
  const latest = list.length === 0 ? 0 : list[list.length - 1]!.version;
  if (current > latest) {
    throw new AppError(
      500,
      'store_too_new',
      `the database has schema version ${current}, this podgate knows up to ${latest}: upgrade podgate`,
    );
  }
  const step = db.transaction((m: Migration) => {
    if (isApplied.get(m.version) !== undefined) return; // another process got here first
    db.exec(m.up);
    record.run(m.version, m.name, new Date().toISOString());
    // user_version mirrors the table so that `sqlite3 podgate.db 'PRAGMA user_version'` tells the schema
    // (the highest applied version: a step filling a gap must not lower it)
    const top = (maxApplied.get() as { v: number }).v;
    db.pragma(`user_version = ${top}`);
  });
  const pending = list.filter((m) => isApplied.get(m.version) === undefined);
  for (const m of pending) step.immediate(m);
  if (pending.length > 0) {
    log.info({ from: current, to: latest, applied: pending.map((m) => m.name) }, 'schema migrated');
  }
  return latest;
}
