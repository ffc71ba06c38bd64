/**
 * The CA files shared through PostgreSQL: a replica checks before every issue and revoke whether they
 * changed, by reading one version number (migration 002) instead of hashing every file. A push from
 * another process must be seen; no change must mean no pull (files untouched) and one query.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SHARED_CA_FILES } from '../../../src/services/ca-files.js';
import type { PgDb } from '../../../src/store/pg/db.js';
import type { PgStore } from '../../../src/store/pg/pg-store.js';
import { pullWhenChanged, pushSharedFiles, sharedFilesVersion } from '../../../src/store/pg/shared-files.js';
import { freshPgStore, type PgTarget } from '../../helpers/pg-store.js';

const WORKER = fileURLToPath(new URL('../../helpers/shared-files-worker.js', import.meta.url));

/** Pushes `dir` from a child process (another replica), as `ca rotate` there would. */
function pushFromAnotherProcess(target: PgTarget, dir: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [WORKER, dir], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`worker failed: ${err.message}\n${stderr}`));
      else resolve(stdout.split('\n').filter(Boolean));
    });
    child.stdin!.end(JSON.stringify(target));
  });
}

/** Runs fn on a handle that counts the queries sent through it. */
async function counted<R>(
  store: PgStore,
  fn: (db: PgDb) => Promise<R>,
): Promise<{ result: R; queries: string[] }> {
  return store.withDb(async (db) => {
    const queries: string[] = [];
    const query = db.query.bind(db);
    db.query = ((sql: string, params?: never) => {
      queries.push(sql);
      return query(sql, params);
    }) as typeof db.query;
    return { result: await fn(db), queries };
  });
}

describe('store (PostgreSQL): shared CA files, seen by version', function () {
  this.timeout(60_000);
  let store: PgStore;
  let target: PgTarget;
  let dir: string;
  let other: string;
  let mine: string;
  beforeEach(async () => {
    ({ store, target } = await freshPgStore(2));
    dir = mkdtempSync(join(tmpdir(), 'podgate-shared-files-'));
    other = join(dir, 'other');
    mine = join(dir, 'mine');
    mkdirSync(other);
    mkdirSync(mine);
  });
  afterEach(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("another process's push is pulled; nothing is pulled, in one query, while the version stands", async () => {
    let seen = await store.withDb(sharedFilesVersion);
    writeFileSync(join(other, 'ca.crt'), 'certificate 1\n');
    writeFileSync(join(other, 'ca.key.enc'), 'key 1\n');
    assert.deepEqual(await pushFromAnotherProcess(target, other), ['ca.crt', 'ca.key.enc']);

    seen = await store.withDb((db) => pullWhenChanged(db, mine, SHARED_CA_FILES, seen));
    assert.equal(readFileSync(join(mine, 'ca.crt'), 'utf8'), 'certificate 1\n');
    assert.equal(readFileSync(join(mine, 'ca.key.enc'), 'utf8'), 'key 1\n');

    // an old mtime on the copy: a pull (write + rename) would give it a new one
    const old = new Date('2020-01-01T00:00:00Z');
    utimesSync(join(mine, 'ca.crt'), old, old);
    const before = statSync(join(mine, 'ca.crt'));
    const still = await counted(store, (db) => pullWhenChanged(db, mine, SHARED_CA_FILES, seen));
    assert.equal(still.result, seen);
    assert.equal(still.queries.length, 1, still.queries.join('\n'));
    assert.match(still.queries[0]!, /FROM shared_files_state/);
    const after = statSync(join(mine, 'ca.crt'));
    assert.equal(after.mtimeMs, before.mtimeMs, 'not pulled');
    assert.equal(after.ino, before.ino, 'not replaced');

    // a rotation on the other replica: the next check pulls it
    writeFileSync(join(other, 'ca.crt'), 'certificate 2\n');
    assert.deepEqual(await pushFromAnotherProcess(target, other), ['ca.crt']);
    const next = await store.withDb((db) => pullWhenChanged(db, mine, SHARED_CA_FILES, seen));
    assert.ok(next > seen);
    assert.equal(readFileSync(join(mine, 'ca.crt'), 'utf8'), 'certificate 2\n');
  });

  it('every write to the table raises the version (also one that does not go through the push)', async () => {
    const v0 = await store.withDb(sharedFilesVersion);
    writeFileSync(join(other, 'ca.crt'), 'certificate\n');
    await store.withDb((db) => pushSharedFiles(db, other, SHARED_CA_FILES));
    const v1 = await store.withDb(sharedFilesVersion);
    assert.ok(v1 > v0);
    // a push that changes nothing writes nothing and leaves the version
    await store.withDb((db) => pushSharedFiles(db, other, SHARED_CA_FILES));
    assert.equal(await store.withDb(sharedFilesVersion), v1);
    // a replica of the previous release writes the table without knowing the counter
    await store.withDb((db) => db.run("UPDATE shared_files SET content = 'x'::bytea WHERE name = 'ca.crt'"));
    const v2 = await store.withDb(sharedFilesVersion);
    assert.ok(v2 > v1);
    await store.withDb((db) => db.run("DELETE FROM shared_files WHERE name = 'ca.crt'"));
    assert.ok((await store.withDb(sharedFilesVersion)) > v2);
  });
});
