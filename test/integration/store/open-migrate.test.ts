import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migrations, openStore, SqliteStore, type Migration } from '../../../src/store/index.js';
import { migrate } from '../../../src/store/migrate.js';
import { newCert } from '../../unit/store/temp-store.js';

const mode = (p: string): number => statSync(p).mode & 0o777;

/** The highest known schema version (numbers are per feature, so the list may have gaps). */
const LATEST = migrations[migrations.length - 1]!.version;

describe('store: opening the file and migrating', () => {
  let dir: string;
  const open: { close(): void }[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-open-'));
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const track = <T extends { close(): void }>(s: T): T => {
    open.push(s);
    return s;
  };

  it('openStore creates <dataDir>/podgate.db: directory 0700, database, WAL and SHM files 0600', async () => {
    const dataDir = join(dir, 'a', 'data');
    const store = track(openStore(dataDir));
    await store.setSetting('k', 'v'); // a write, so that the -wal file exists
    assert.equal(store.file, join(dataDir, 'podgate.db'));
    assert.equal(mode(dataDir), 0o700);
    assert.equal(mode(join(dataDir, 'podgate.db')), 0o600);
    assert.ok(existsSync(join(dataDir, 'podgate.db-wal')));
    assert.equal(mode(join(dataDir, 'podgate.db-wal')), 0o600);
    assert.equal(mode(join(dataDir, 'podgate.db-shm')), 0o600);
  });

  it('tightens a pre-existing database file to 0600 but leaves an existing directory alone', () => {
    const dataDir = join(dir, 'existing');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'podgate.db'), '');
    chmodSync(join(dataDir, 'podgate.db'), 0o644);
    track(openStore(dataDir));
    assert.equal(mode(join(dataDir, 'podgate.db')), 0o600);
    assert.equal(mode(dataDir), 0o755);
  });

  it('runs in WAL mode with the schema version recorded in both places', () => {
    const file = join(dir, 'podgate.db');
    const store = track(SqliteStore.open(file));
    assert.equal(store.schemaVersion, LATEST);
    const raw = track(new Database(file));
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(raw.pragma('user_version', { simple: true }), LATEST);
    const rows = raw.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
    assert.deepEqual(
      rows,
      migrations.map((m) => ({ version: m.version, name: m.name })),
    );
  });

  it('bounds the page cache of its connection to 4 MiB (the build default is 16 MiB per connection)', () => {
    const store = track(SqliteStore.open(join(dir, 'podgate.db')));
    const own = (store as unknown as { db: Database.Database }).db;
    assert.equal(own.pragma('cache_size', { simple: true }), -4096);
  });

  it('reopening is idempotent: no step runs twice and data survives', async () => {
    const file = join(dir, 'podgate.db');
    const s1 = SqliteStore.open(file);
    const cert = await s1.insertCert(newCert());
    await s1.close();
    const s2 = track(SqliteStore.open(file));
    const s3 = track(SqliteStore.open(file)); // a second connection at the same time (web + CLI)
    assert.deepEqual(await s2.getCert(cert.serial), cert);
    assert.deepEqual(await s3.getCert(cert.serial), cert);
    const raw = track(new Database(file));
    assert.equal(raw.prepare('SELECT count(*) FROM schema_migrations').pluck().get(), migrations.length);
  });

  it('applies a step added later, keeping existing data', async () => {
    const file = join(dir, 'podgate.db');
    const s1 = SqliteStore.open(file);
    await s1.setSetting('k', 'v');
    await s1.close();
    const extra: Migration = {
      version: LATEST + 1,
      name: 'extra',
      up: 'CREATE TABLE extra (x TEXT) STRICT;',
    };
    const s2 = track(SqliteStore.open(file, { migrations: [...migrations, extra] }));
    assert.equal(s2.schemaVersion, LATEST + 1);
    assert.equal(await s2.getSetting('k'), 'v');
    const raw = track(new Database(file));
    assert.equal(raw.pragma('user_version', { simple: true }), LATEST + 1);
    assert.ok(raw.prepare("SELECT 1 FROM sqlite_master WHERE name = 'extra'").get());
  });

  it('a failing step is rolled back completely and the file stays at the previous version', async () => {
    const file = join(dir, 'podgate.db');
    await SqliteStore.open(file).close();
    const broken: Migration = {
      version: LATEST + 1,
      name: 'broken',
      up: 'CREATE TABLE half (x TEXT); INSERT INTO no_such_table VALUES (1);',
    };
    assert.throws(() => SqliteStore.open(file, { migrations: [...migrations, broken] }), /no such table/);
    const raw = track(new Database(file));
    assert.equal(raw.pragma('user_version', { simple: true }), LATEST);
    assert.equal(raw.prepare("SELECT 1 FROM sqlite_master WHERE name = 'half'").get(), undefined);
    assert.equal(raw.prepare('SELECT max(version) FROM schema_migrations').pluck().get(), LATEST);
    track(SqliteStore.open(file)); // and the released steps still open it
  });

  it('refuses a database written by a newer podgate', async () => {
    const file = join(dir, 'podgate.db');
    await SqliteStore.open(file).close();
    assert.throws(
      () => SqliteStore.open(file, { migrations: migrations.slice(0, 1) }),
      new RegExp(`schema version ${LATEST}, this podgate knows up to 1`),
    );
  });

  it('refuses a migration list out of order or with a repeat', () => {
    assert.throws(
      () =>
        SqliteStore.open(join(dir, 'x.db'), {
          migrations: [migrations[1] as Migration, migrations[0] as Migration],
        }),
      /position 2 holds version 1 \(core\) after 2/,
    );
    assert.throws(
      () =>
        SqliteStore.open(join(dir, 'y.db'), {
          migrations: [migrations[0] as Migration, migrations[0] as Migration],
        }),
      /position 2 holds version 1/,
    );
  });

  it('fills a gap later: a step numbered below the newest applied one still runs once', () => {
    const file = join(dir, 'gap.db');
    const first: Migration = { version: 1, name: 'first', up: 'CREATE TABLE first (x TEXT) STRICT;' };
    const late: Migration = { version: 7, name: 'late', up: 'CREATE TABLE late (x TEXT) STRICT;' };
    const gap: Migration = { version: 4, name: 'gap', up: 'CREATE TABLE gap (x TEXT) STRICT;' };
    const db = track(new Database(file));
    assert.equal(migrate(db, [first, late]), 7);
    assert.equal(migrate(db, [first, gap, late]), 7);
    assert.ok(db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'gap'").get());
    assert.equal(db.pragma('user_version', { simple: true }), 7, 'a gap filled later does not lower it');
    migrate(db, [first, gap, late]); // and nothing runs twice
    assert.deepEqual(
      db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all(),
      [1, 4, 7],
    );
  });

  it('enforces foreign keys on the store connection', async () => {
    const store = track(SqliteStore.open(join(dir, 'podgate.db')));
    await assert.rejects(() => store.insertCert(newCert({ ownerId: 42 })), /owner 42 does not exist/);
  });
});
