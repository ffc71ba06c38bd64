/**
 * Backup and restore with a PostgreSQL store (Debian's server, started by the test), and across engines:
 * the archive is the same on both, so a PostgreSQL backup restores into an empty PostgreSQL database
 * (through the real CLI) and into a SQLite data dir, and a SQLite backup into PostgreSQL. The restored
 * store verifies: same certificates and revocations, same CRL number (the CRL verifies against the
 * restored CA), the CA key opens with the passphrase, and the next issue and revocation work.
 * Restore into a database that holds podgate rows, or with a CA passphrase that does not open the
 * key, is refused naming the field, and changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../../src/lib/errors.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { decodeBackup } from '../../../src/services/backup-format.js';
import { loadConfig } from '../../../src/config/load.js';
import { createStoreBackup, restoreStoreBackup } from '../../../src/services/store-backup.js';
import type { AppContext } from '../../../src/services/context.js';
import { runCli } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';
import type { PgServer } from '../../helpers/postgres.js';
import { sharedPostgres } from '../../helpers/pg-store.js';

const PASS = 'backup passphrase for the engines test';
const CA_PASS = 'engines-test-ca-passphrase';

interface Summary {
  certs: string[];
  revoked: string[];
  crlNumber: number;
  users: string[];
  caPem: string;
}

async function summary(ctx: AppContext): Promise<Summary> {
  const { items } = await ctx.store.listCerts({ limit: 1000 });
  const crl = (await ctx.store.getCrl())!;
  // the CRL verifies against the CA this context opened (its key decrypted with the passphrase)
  const inCrl = verifyCrl(crl.pem, ctx.ca.certPem).revokedSerials;
  const revoked = items.filter((c) => c.status === 'revoked').map((c) => c.serial);
  assert.deepEqual(
    inCrl.map((s) => s.replace(/^0+/, '')).sort(),
    revoked.map((s) => s.replace(/^0+/, '')).sort(),
  );
  return {
    certs: items.map((c) => c.serial).sort(),
    revoked: revoked.sort(),
    crlNumber: crl.number,
    users: (await ctx.store.listUsers()).map((u) => u.name).sort(),
    caPem: ctx.ca.certPem,
  };
}

describe('store: backup and restore on PostgreSQL and across engines', function () {
  this.timeout(180_000);
  let dir: string;
  let pg: PgServer;
  let n = 0;
  const pgOverrides = (database: string) => ({
    'store.url': pg.url(database),
    'store.passwordFile': pg.passwordFile,
    'ca.passphraseFile': join(dir, 'ca.pass'),
  });
  const fresh = (name: string) => join(dir, `${name}-${++n}`);

  /** A store with users, valid and revoked certificates, the CRL at a number above 1. */
  async function fill(ctx: AppContext): Promise<Summary> {
    await ctx.users.create({ actor: 'test', name: 'bea', role: 'user' });
    const serials: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { cert } = await ctx.devices.issue({ actor: 'test', owner: 'bea', commonName: `bea-${i}` });
      serials.push(cert.serial);
    }
    await ctx.revocation.revoke({ actor: 'test', serialOrName: serials[0]!, reason: 'keyCompromise' });
    await ctx.revocation.revoke({ actor: 'test', serialOrName: serials[1]!, reason: 'superseded' });
    return summary(ctx);
  }

  /** Opens the restored store, checks it equals `expected`, and that it still issues and revokes. */
  async function checkRestored(ctx: AppContext, expected: Summary): Promise<void> {
    const got = await summary(ctx);
    assert.deepEqual(got, expected);
    const audit = await ctx.store.listAudit({ action: 'backup.restore', limit: 10 });
    assert.equal(audit.length, 1, 'one backup.restore audit row');
    const { cert } = await ctx.devices.issue({ actor: 'test', owner: 'bea', commonName: 'after-restore' });
    const { crl } = await ctx.revocation.revoke({ actor: 'test', serialOrName: cert.serial });
    assert.equal(crl.number, expected.crlNumber + 1, 'the CRL number continues');
  }

  before(async () => {
    pg = await sharedPostgres();
    dir = mkdtempSync(join(tmpdir(), 'podgate-backup-engines-'));
    writeFileSync(join(dir, 'ca.pass'), `${CA_PASS}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'backup.pass'), `${PASS}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'wrong-ca.pass'), 'not-the-ca-passphrase-at-all\n', { mode: 0o600 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('CLI: PostgreSQL backup restores into an empty PostgreSQL database; a non-empty one is refused, unchanged', async () => {
    const source = await pg.createDatabase('bsrc');
    const ctx = await testContext(dir, { ...pgOverrides(source), dataDir: fresh('src') });
    let expected: Summary;
    try {
      expected = await fill(ctx);
    } finally {
      await ctx.close();
    }
    const env = {
      PODGATE_STORE_URL: pg.url(source),
      PODGATE_STORE_PASSWORD_FILE: pg.passwordFile,
      PODGATE_CA_PASSPHRASE_FILE: join(dir, 'ca.pass'),
      PODGATE_VPN_ENDPOINTS: '172.18.12.21',
      PGPASSWORD: '',
    };
    const file = join(dir, 'pg.pgbackup');
    const made = await runCli(
      ['--data-dir', fresh('cli'), 'backup', '--out', file, '--passphrase-file', join(dir, 'backup.pass')],
      env,
    );
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, new RegExp(`2 revoked, CRL #${expected.crlNumber};`));
    const names = decodeBackup(readFileSync(file), PASS).entries.map((e) => e.path);
    assert.deepEqual(names.sort(), ['ca.crt', 'ca.key.enc', 'podgate.db']);

    const target = await pg.createDatabase('bdst');
    const restore = (database: string) =>
      runCli(['--data-dir', fresh('cli'), 'restore', file, '--passphrase-file', join(dir, 'backup.pass')], {
        ...env,
        PODGATE_STORE_URL: pg.url(database),
      });
    const r = await restore(target);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`restored 3 files into postgres://.*/${target}`));
    const restored = await testContext(dir, { ...pgOverrides(target), dataDir: fresh('replica') });
    try {
      await checkRestored(restored, expected);
    } finally {
      await restored.close();
    }

    // into the source (not empty): exit 2 naming store.url, and its rows are as they were
    const before = await counts(source);
    const again = await restore(source);
    assert.equal(again.code, 2, again.stdout);
    assert.match(again.stderr, /store\.url.*already holds podgate data|already holds podgate data/);
    assert.deepEqual(await counts(source), before);
  });

  it('PostgreSQL backup restores into a SQLite data dir, and a SQLite backup into PostgreSQL', async () => {
    const source = await pg.createDatabase('xsrc');
    const ctx = await testContext(dir, { ...pgOverrides(source), dataDir: fresh('src') });
    let expected: Summary;
    let file: Buffer;
    try {
      expected = await fill(ctx);
      file = (await createStoreBackup({ config: ctx.config, dataDir: ctx.dataDir, passphrase: PASS })).data;
    } finally {
      await ctx.close();
    }
    const sqliteDir = fresh('sqlite');
    const sqliteConfig = loadConfig({
      env: {},
      overrides: { dataDir: sqliteDir, 'ca.passphraseFile': join(dir, 'ca.pass') },
    });
    const r = await restoreStoreBackup({ file, passphrase: PASS, config: sqliteConfig, actor: 'test' });
    assert.equal(r.dataDir, sqliteDir);
    const onSqlite = await testContext(dir, {
      dataDir: sqliteDir,
      'ca.passphraseFile': join(dir, 'ca.pass'),
    });
    let back: Buffer;
    try {
      const got = await summary(onSqlite);
      assert.deepEqual(got, expected);
      back = (
        await createStoreBackup({ config: onSqlite.config, dataDir: onSqlite.dataDir, passphrase: PASS })
      ).data;
    } finally {
      await onSqlite.close();
    }
    // and back: the SQLite data dir's backup into a new PostgreSQL database
    const target = await pg.createDatabase('xdst');
    const pgConfig = loadConfig({
      env: {},
      overrides: { ...pgOverrides(target), dataDir: fresh('restorer') },
    });
    await restoreStoreBackup({ file: back, passphrase: PASS, config: pgConfig, actor: 'test' });
    const onPg = await testContext(dir, { ...pgOverrides(target), dataDir: fresh('replica') });
    try {
      const got = await summary(onPg);
      assert.deepEqual(got, expected);
      assert.equal((await onPg.store.listAudit({ action: 'backup.restore', limit: 10 })).length, 2);
    } finally {
      await onPg.close();
    }
  });

  it('400 ca.passphraseFile that does not open the key: the empty database stays empty', async () => {
    const source = await pg.createDatabase('wsrc');
    const ctx = await testContext(dir, { ...pgOverrides(source), dataDir: fresh('src') });
    let file: Buffer;
    try {
      await fill(ctx);
      file = (await createStoreBackup({ config: ctx.config, dataDir: ctx.dataDir, passphrase: PASS })).data;
    } finally {
      await ctx.close();
    }
    const target = await pg.createDatabase('wdst');
    const config = loadConfig({
      env: {},
      overrides: {
        ...pgOverrides(target),
        'ca.passphraseFile': join(dir, 'wrong-ca.pass'),
        dataDir: fresh('restorer'),
      },
    });
    await assert.rejects(
      restoreStoreBackup({ file, passphrase: PASS, config, actor: 'test' }),
      (err: unknown) => err instanceof AppError && err.status === 400 && err.field === 'ca.passphraseFile',
    );
    const c = await pg.connect(target);
    try {
      const tables = await c.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'users'");
      assert.equal(tables.rowCount, 0, 'not even the schema was made');
    } finally {
      await c.end();
    }
  });

  async function counts(database: string): Promise<Record<string, number>> {
    const c = await pg.connect(database);
    try {
      const out: Record<string, number> = {};
      for (const t of ['users', 'certificates', 'audit_log', 'crl_state', 'shared_files']) {
        out[t] = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);
      }
      out.crl = Number((await c.query<{ n: string }>('SELECT number AS n FROM crl_state')).rows[0]!.n);
      return out;
    } finally {
      await c.end();
    }
  }
});
