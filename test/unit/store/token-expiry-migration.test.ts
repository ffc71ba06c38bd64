import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from '../../../src/store/migrate.js';
import { migrations, SqliteStore } from '../../../src/store/index.js';

/** Migration 004 on a database made by the three steps before it, with tokens already in it. */
describe('store migration 004: API token expiry', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-m004-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('gives existing tokens an expiry 90 days out and deletes those of disabled users', async () => {
    const file = join(dir, 'podgate.db');
    const old = new Database(file);
    migrate(old, migrations.slice(0, 3));
    const at = new Date().toISOString();
    old.exec(`INSERT INTO users (id, name, role, disabled, created_at) VALUES
      (1, 'alice', 'user', 0, '${at}'), (2, 'bob', 'user', 1, '${at}');
      INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES
      (1, 'ci', '${'a'.repeat(64)}', '${at}'), (2, 'ci', '${'b'.repeat(64)}', '${at}');`);
    old.close();

    const store = SqliteStore.open(file);
    try {
      assert.equal(store.schemaVersion, migrations[migrations.length - 1]!.version);
      const [t] = await store.listTokens(1);
      const days = (t!.expiresAt!.getTime() - Date.now()) / 86_400_000;
      assert.ok(days > 89.9 && days <= 90, `expires in ${days} days`);
      assert.equal(await store.findTokenByHash('b'.repeat(64)), undefined);
      assert.deepEqual(await store.listTokens(2), []);
    } finally {
      await store.close();
    }
  });
});
