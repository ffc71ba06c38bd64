import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import { LOCK } from '../locks.js';
import { lockInTransaction, type PgDb } from './db.js';

/** The data-dir files of `dir` whose names match `pattern`, sorted. */
export function matchingFiles(dir: string, pattern: RegExp): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => pattern.test(n) && statSync(join(dir, n)).isFile())
    .sort();
}

/**
 * Data-dir files that every replica needs (the CA certificates and their encrypted keys: names matching
 * `pattern`), kept in the `shared_files` table on PostgreSQL. Each replica's data dir is a local copy:
 * `pullSharedFiles` writes the database's versions into it (atomically, mode 0600) and removes matching
 * files the database does not have; `pushSharedFiles` after a change (init, CA rotation) stores the local
 * ones and removes rows of matching files that are gone, in the caller's transaction when it has one.
 * Keys stay encrypted as in the data dir; the secret that opens them never goes into the database.
 */
export async function pushSharedFiles(db: PgDb, dir: string, pattern: RegExp): Promise<string[]> {
  const local = matchingFiles(dir, pattern);
  return db.atomic(async (tx) => {
    const rows = await tx.all<{ name: string; content: Buffer }>('SELECT name, content FROM shared_files');
    const changed: string[] = [];
    for (const r of rows) {
      if (pattern.test(r.name) && !local.includes(r.name)) {
        await tx.run('DELETE FROM shared_files WHERE name = ?', [r.name]);
        changed.push(r.name);
      }
    }
    for (const name of local) {
      const path = join(dir, name);
      const content = readFileSync(path);
      if (rows.some((r) => r.name === name && r.content.equals(content))) continue;
      await tx.run(
        `INSERT INTO shared_files (name, content, mode, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET content = excluded.content, mode = excluded.mode,
           updated_at = excluded.updated_at`,
        [name, content, statSync(path).mode & 0o777, new Date().toISOString()],
      );
      changed.push(name);
    }
    return changed.sort();
  });
}

/** Writes the database's copies into dir and removes matching files it does not have; returns the names written. */
export async function pullSharedFiles(db: PgDb, dir: string, pattern: RegExp): Promise<string[]> {
  const rows = (
    await db.all<{ name: string; content: Buffer }>('SELECT name, content FROM shared_files')
  ).filter((r) => pattern.test(r.name));
  // 0600 whatever the source had: only podgate reads its data dir (a checkout may have left 0644)
  for (const r of rows) writeFileAtomic(join(dir, r.name), r.content, 0o600);
  const have = new Set(rows.map((r) => r.name));
  for (const name of matchingFiles(dir, pattern))
    if (!have.has(name)) rmSync(join(dir, name), { force: true });
  return [...have].sort();
}

/**
 * The version of the database's shared files: raised (by a trigger, see migration 002) in the
 * transaction of every write to them, so one integer tells whether anything changed since a pull.
 */
export async function sharedFilesVersion(db: PgDb): Promise<number> {
  const r = await db.get<{ version: string }>('SELECT version FROM shared_files_state WHERE id = 1');
  return Number(r!.version);
}

/**
 * Runs `fn` (load or create the CA) between a pull and a push of the shared files, under a
 * transaction-scoped advisory lock: replicas starting together on an empty database create one CA,
 * not one each (the second waits, then pulls the first one's). Returns fn's result and the files'
 * version read before the pull (a later change, this push's included, is then pulled once more by
 * {@link pullWhenChanged}: never one missed).
 */
export async function withSharedFiles<R>(
  db: PgDb,
  dir: string,
  pattern: RegExp,
  fn: () => Promise<R>,
): Promise<{ result: R; version: number }> {
  return db.atomic(async (tx) => {
    await lockInTransaction(tx, LOCK.sharedFiles);
    const version = await sharedFilesVersion(tx);
    await pullSharedFiles(tx, dir, pattern);
    const result = await fn();
    await pushSharedFiles(tx, dir, pattern);
    return { result, version };
  });
}

/**
 * Pulls only when the database's files changed since version `seen` (this replica's last pull);
 * returns the version now. The common case is one single-row read (this runs before every issue and
 * revoke). The version is read before the pull: a push landing in between is pulled again next time,
 * never missed. Pulling only on a change matters beyond cost: a CLI rotating the CA in this data dir
 * (before it pushes) must not see its half-made files replaced by the database's older ones.
 */
export async function pullWhenChanged(db: PgDb, dir: string, pattern: RegExp, seen: number): Promise<number> {
  const now = await sharedFilesVersion(db);
  if (now !== seen) await pullSharedFiles(db, dir, pattern);
  return now;
}
