import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import type { PgDb } from './db.js';

/**
 * Data-dir files that every replica needs (the CA certificates and their encrypted keys), kept in the
 * `shared_files` table on PostgreSQL. Each replica's data dir is then a local copy: `pullSharedFiles` at
 * start writes the database's versions into it (atomically, mode 0600) and removes the named
 * files the database does not have; `pushSharedFiles` after a change (init, CA rotation) stores the
 * local ones, in one transaction, removing rows of named files that are gone. Keys stay encrypted as in
 * the data dir; the secret that opens them never goes into the database.
 */
export async function pushSharedFiles(db: PgDb, dir: string, names: readonly string[]): Promise<string[]> {
  const stored: string[] = [];
  await db.atomic(async (tx) => {
    for (const name of names) {
      const path = join(dir, name);
      if (!existsSync(path)) {
        await tx.run('DELETE FROM shared_files WHERE name = ?', [name]);
        continue;
      }
      await tx.run(
        `INSERT INTO shared_files (name, content, mode, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET content = excluded.content, mode = excluded.mode,
           updated_at = excluded.updated_at`,
        [name, readFileSync(path), statSync(path).mode & 0o777, new Date().toISOString()],
      );
      stored.push(name);
    }
  });
  return stored;
}

/** Writes the database's copies of `names` into dir; returns the names written. */
export async function pullSharedFiles(db: PgDb, dir: string, names: readonly string[]): Promise<string[]> {
  const rows = await db.all<{ name: string; content: Buffer; mode: number }>(
    'SELECT name, content, mode FROM shared_files WHERE name = ANY(?::text[])',
    [[...names]],
  );
  const have = new Set(rows.map((r) => r.name));
  // 0600 whatever the source had: only podgate reads its data dir (a checkout may have left 0644)
  for (const r of rows) writeFileAtomic(join(dir, r.name), r.content, 0o600);
  for (const name of names) if (!have.has(name)) rmSync(join(dir, name), { force: true });
  return rows.map((r) => r.name).sort();
}
