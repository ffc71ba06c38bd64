import { AppError } from '../../lib/errors.js';
import { logger } from '../../lib/logger.js';
import { checkMigrationList } from '../migrate.js';
import type { Migration } from '../migrations/migration.js';
import { LOCK } from '../locks.js';
import { lockInTransaction, type PgDb } from './db.js';

const log = logger.child({ module: 'store.pg' });

/**
 * Brings a PostgreSQL schema up to the last step and returns its version. All steps run in one
 * transaction that first takes a transaction-scoped advisory lock, so replicas starting together
 * apply each step exactly once (the others wait, then find nothing to do). Refuses a database written
 * by a newer podgate.
 */
export async function migratePg(db: PgDb, list: readonly Migration[]): Promise<number> {
  checkMigrationList(list);
  const latest = list.length === 0 ? 0 : list[list.length - 1]!.version;
  return db.atomic(async (tx) => {
    await lockInTransaction(tx, LOCK.schema);
    await tx.run(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at text NOT NULL
    )`);
    const applied = new Set(
      (await tx.all<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => r.version),
    );
    const current = Math.max(0, ...applied);
    if (current > latest) {
      throw new AppError(
        500,
        'store_too_new',
        `the database has schema version ${current}, this podgate knows up to ${latest}: upgrade podgate`,
      );
    }
    const pending = list.filter((m) => !applied.has(m.version));
    for (const m of pending) {
      await tx.exec(m.up);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [
        m.version,
        m.name,
        new Date().toISOString(),
      ]);
    }
    if (pending.length > 0) {
      log.info({ from: current, to: latest, applied: pending.map((m) => m.name) }, 'schema migrated');
    }
    return latest;
  });
}
