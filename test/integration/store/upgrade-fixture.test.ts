/**
 * Upgrades: test/fixtures/datadir-v0.1.0 is a data dir written by podgate 0.1.0 (the code of the first
 * release, through its CLI: scripts/make-datadir-fixture.mjs) and checked in unchanged. A copy of it
 * opens with the current code: migrations run exactly once (a second open applies nothing), the old
 * users sign in, the old certificates, revocation, CRL, server identity and stored discovery are all
 * there, a new certificate can be issued, and backup and restore work on it.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadConfig } from '../../../src/config/load.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { createBackup, restoreBackup } from '../../../src/services/backup.js';
import { openContext } from '../../../src/services/context.js';
import { effectiveNetwork } from '../../../src/services/network.js';
import { migrations } from '../../../src/store/index.js';
import { setLogLevel } from '../../../src/lib/logger.js';

const FIXTURE = join(process.cwd(), 'test', 'fixtures', 'datadir-v0.1.0');

function migrationRows(dataDir: string): { version: number; applied_at: string }[] {
  const db = new Database(join(dataDir, 'podgate.db'), { readonly: true });
  try {
    return db.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all() as {
      version: number;
      applied_at: string;
    }[];
  } finally {
    db.close();
  }
}

describe('upgrade: a data dir made by podgate 0.1.0 opens in this code', function () {
  this.timeout(60_000);
  let dir: string;
  let dataDir: string;
  const config = () =>
    loadConfig({ env: {}, overrides: { dataDir, 'vpn.endpoints': ['172.18.12.21'], logLevel: 'silent' } });

  before(() => {
    setLogLevel('error');
    dir = mkdtempSync(join(tmpdir(), 'podgate-upgrade-'));
    dataDir = join(dir, 'data');
    cpSync(FIXTURE, dataDir, { recursive: true });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('migrations run once: the old steps are kept, the new ones applied, a second open applies nothing', async () => {
    const old = migrationRows(dataDir);
    assert.deepEqual(
      old.map((r) => r.version),
      [1, 2, 3],
      'the fixture is at schema 3 (podgate 0.1.0)',
    );
    const ctx = await openContext(config());
    await ctx.close();
    const once = migrationRows(dataDir);
    assert.deepEqual(
      once.map((r) => r.version),
      migrations.map((m) => m.version),
    );
    assert.deepEqual(once.slice(0, 3), old, 'released steps are not re-run');
    const ctx2 = await openContext(config());
    await ctx2.close();
    assert.deepEqual(migrationRows(dataDir), once, 'the second open applied nothing');
  });

  it('old users, certificates, revocation, CRL, server identity and discovery are all there and usable', async () => {
    const ctx = await openContext(config());
    try {
      assert.ok(await ctx.users.verifyPassword('alice', 'fixture-user-password'));
      assert.ok(await ctx.users.verifyPassword('admin', 'fixture-admin-password'));
      const { items } = await ctx.store.listCerts({ limit: 100 });
      const byName = Object.fromEntries(items.map((c) => [c.commonName, c]));
      assert.equal(byName['alice-laptop']?.status, 'valid');
      assert.equal(byName['bob-laptop']?.status, 'valid');
      assert.equal(byName['alice-phone']?.status, 'revoked');
      assert.equal(byName['alice-phone']?.revocationReason, 'keyCompromise');
      const crl = verifyCrl((await ctx.store.getCrl())!.pem, ctx.ca.certPem);
      assert.deepEqual(
        crl.revokedSerials.map((s) => s.toUpperCase()),
        [byName['alice-phone']!.serial],
      );
      assert.deepEqual((await effectiveNetwork(ctx.config, ctx.store)).serviceCidrs, ['10.96.0.0/12']);
      const id = await ctx.server.ensure();
      assert.match(id.tlsCryptV2ServerKeyPem, /BEGIN OpenVPN tls-crypt-v2 server key/);
      const issued = await ctx.devices.issue({ actor: 'test', owner: 'bob', commonName: 'bob-new' });
      assert.match(issued.profile, /<tls-crypt-v2>/);
      await ctx.revocation.revoke({ actor: 'test', serialOrName: 'bob-laptop', reason: 'superseded' });
      assert.equal((await ctx.store.getCrl())!.number, crl.number + 1);
    } finally {
      await ctx.close();
    }
  });

  it('backup and restore work on the upgraded data dir', async () => {
    const made = await createBackup({ dataDir, passphrase: 'upgrade test passphrase' });
    const target = join(dir, 'restored');
    const r = await restoreBackup({
      file: made.data,
      passphrase: 'upgrade test passphrase',
      dataDir: target,
      config: config(),
      actor: 'test',
    });
    assert.equal(r.info.schemaVersion, migrations.at(-1)!.version); // versions may have gaps
    const restoredConfig = loadConfig({ env: {}, overrides: { dataDir: target, logLevel: 'silent' } });
    const ctx = await openContext(restoredConfig);
    try {
      const names = (await ctx.store.listCerts({ status: 'revoked', limit: 100 })).items
        .map((c) => c.commonName)
        .sort();
      assert.deepEqual(names, ['alice-phone', 'bob-laptop']);
      assert.ok(await ctx.users.verifyPassword('alice', 'fixture-user-password'));
    } finally {
      await ctx.close();
    }
  });
});
