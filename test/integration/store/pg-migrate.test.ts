/**
 * `podgate store migrate --to postgres://…` at the store level: a data dir made by podgate 0.1.0
 * (test/fixtures/datadir-v0.1.0, upgraded by opening it once, as a running podgate would) is copied into
 * an empty PostgreSQL database. Every row arrives, the CRL number and the CA files come along, the
 * SQLite file and the data dir are byte for byte unchanged, and a second copy into the same database
 * is refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SHARED_CA_FILES } from '../../../src/services/ca-files.js';
import { SqliteStore } from '../../../src/store/index.js';
import { copySqliteToPg } from '../../../src/store/pg/copy-from-sqlite.js';
import { PgStore } from '../../../src/store/pg/pg-store.js';
import { pgTarget, sharedPostgres } from '../../helpers/pg-store.js';

const FIXTURE = join(process.cwd(), 'test', 'fixtures', 'datadir-v0.1.0');

function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out[p.slice(dir.length)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

describe('store (PostgreSQL): copying a SQLite data dir', function () {
  this.timeout(120_000);
  let dir: string;
  let dataDir: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-pgmig-'));
    dataDir = join(dir, 'data');
    cpSync(FIXTURE, dataDir, { recursive: true });
    await SqliteStore.open(join(dataDir, 'podgate.db')).close(); // the upgrade a running podgate does first
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('copies every row, the CRL number and the CA files; the source stays untouched', async () => {
    const pg = await sharedPostgres();
    const target = pgTarget(pg, await pg.createDatabase('mig'));
    const before = hashes(dataDir);
    const report = await copySqliteToPg(join(dataDir, 'podgate.db'), target, {
      dir: dataDir,
      pattern: SHARED_CA_FILES,
    });
    assert.deepEqual(hashes(dataDir), before, 'the data dir is byte for byte unchanged');

    const src = new Database(join(dataDir, 'podgate.db'), { readonly: true });
    const count = (t: string) => src.prepare(`SELECT count(*) FROM ${t}`).pluck().get() as number;
    assert.equal(report.tables.find((t) => t.name === 'certificates')!.rows, count('certificates'));
    assert.equal(report.tables.find((t) => t.name === 'users')!.rows, 3);
    assert.equal(report.crlNumber, src.prepare('SELECT number FROM crl_state').pluck().get());
    src.close();
    assert.deepEqual(report.files, ['ca.crt', 'ca.key.enc']);

    const store = await PgStore.open(target);
    try {
      assert.deepEqual(
        (await store.listUsers()).map((u) => u.name),
        ['admin', 'alice', 'bob'],
      );
      const phone = (await store.listCerts({ search: 'alice-phone' })).items[0]!;
      assert.equal(phone.status, 'revoked');
      assert.equal(phone.revocationReason, 'keyCompromise');
      assert.equal((await store.getCrl())!.number, report.crlNumber);
      assert.equal((await store.listCerts({ status: 'revoked' })).total, 1);
      // ids continue after the copied ones
      const carol = await store.createUser({ name: 'carol', role: 'user', passwordHash: null });
      assert.equal(carol.id, 4);
      const files = await store.withDb((db) =>
        db.all<{ name: string; content: Buffer }>('SELECT name, content FROM shared_files ORDER BY name'),
      );
      assert.deepEqual(
        files.map((f) => f.name),
        ['ca.crt', 'ca.key.enc'],
      );
      assert.deepEqual(files[0]!.content, readFileSync(join(dataDir, 'ca.crt')));
    } finally {
      await store.close();
    }

    await assert.rejects(
      copySqliteToPg(join(dataDir, 'podgate.db'), target, { dir: dataDir, pattern: SHARED_CA_FILES }),
      (err: Error & { status?: number; field?: string }) =>
        err.status === 409 && err.field === 'store.url' && /already holds podgate data/.test(err.message),
    );
  });

  it('400 a source at an older schema: nothing is written', async () => {
    const pg = await sharedPostgres();
    const database = await pg.createDatabase('mig');
    const old = join(dir, 'old');
    cpSync(FIXTURE, old, { recursive: true }); // not upgraded
    await assert.rejects(
      copySqliteToPg(join(old, 'podgate.db'), pgTarget(pg, database), { dir: old, pattern: SHARED_CA_FILES }),
      (err: Error & { status?: number; field?: string }) =>
        err.status === 400 && err.field === 'dataDir' && /start this podgate once/.test(err.message),
    );
    const c = await pg.connect(database);
    try {
      const r = await c.query(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'users'",
      );
      assert.equal(r.rows[0].n, 0, 'the target database was not touched');
    } finally {
      await c.end();
    }
  });

  it('500 a SQLite column the PostgreSQL schema lacks: the copy is refused and rolled back', async () => {
    const pg = await sharedPostgres();
    const target = pgTarget(pg, await pg.createDatabase('mig'));
    const db = new Database(join(dataDir, 'podgate.db'));
    db.exec('ALTER TABLE gateways ADD COLUMN future_field TEXT');
    db.close();
    await assert.rejects(
      copySqliteToPg(join(dataDir, 'podgate.db'), target, { dir: dataDir, pattern: SHARED_CA_FILES }),
      /no column gateways\.future_field/,
    );
    const store = await PgStore.open(target);
    try {
      assert.deepEqual(await store.listUsers(), [], 'nothing was copied');
    } finally {
      await store.close();
    }
  });
});

describe('store (PostgreSQL): CA files shared through the database', function () {
  this.timeout(60_000);
  it('a replica pulls what another pushed (bytes and mode); a file removed and pushed is removed on pull', async () => {
    const { freshPgStore } = await import('../../helpers/pg-store.js');
    const { pushSharedFiles, pullSharedFiles } = await import('../../../src/store/pg/shared-files.js');
    const { store } = await freshPgStore();
    const one = mkdtempSync(join(tmpdir(), 'podgate-pgfiles-'));
    const two = mkdtempSync(join(tmpdir(), 'podgate-pgfiles-'));
    try {
      cpSync(join(FIXTURE, 'ca.crt'), join(one, 'ca.crt'));
      cpSync(join(FIXTURE, 'ca.key.enc'), join(one, 'ca.key.enc'));
      const names = /^ca(-next|-previous)?\.(crt|key\.enc)$/;
      writeFileSync(join(one, 'podgate.db'), 'not shared');
      assert.deepEqual(await store.withDb((db) => pushSharedFiles(db, one, names)), ['ca.crt', 'ca.key.enc']);
      assert.deepEqual(
        await store.withDb((db) => pushSharedFiles(db, one, names)),
        [],
        'unchanged: nothing written',
      );
      writeFileSync(join(two, 'ca-next.crt'), 'stale');
      assert.deepEqual(await store.withDb((db) => pullSharedFiles(db, two, names)), ['ca.crt', 'ca.key.enc']);
      assert.ok(!existsSync(join(two, 'podgate.db')));
      assert.deepEqual(readFileSync(join(two, 'ca.key.enc')), readFileSync(join(one, 'ca.key.enc')));
      assert.equal(
        statSync(join(two, 'ca.key.enc')).mode & 0o077,
        0,
        'the key envelope is not readable by others',
      );
      assert.ok(!existsSync(join(two, 'ca-next.crt')), 'a file the database does not have is removed');
      rmSync(join(one, 'ca.key.enc'));
      await store.withDb((db) => pushSharedFiles(db, one, names));
      await store.withDb((db) => pullSharedFiles(db, two, names));
      assert.ok(!existsSync(join(two, 'ca.key.enc')));
    } finally {
      await store.close();
      rmSync(one, { recursive: true, force: true });
      rmSync(two, { recursive: true, force: true });
    }
  });
});
