import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, storeTarget } from '../../../src/config/load.js';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

describe('config: store.url', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-store-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('absent, "sqlite:" and PODGATE_STORE_URL=sqlite: all mean the SQLite file in dataDir', () => {
    assert.deepEqual(storeTarget(loadConfig({ env: {} })), { engine: 'sqlite' });
    assert.deepEqual(storeTarget(loadConfig({ env: {}, overrides: { 'store.url': 'sqlite:' } })), {
      engine: 'sqlite',
    });
    assert.deepEqual(storeTarget(loadConfig({ env: { PODGATE_STORE_URL: 'sqlite:' } })), {
      engine: 'sqlite',
    });
  });

  it('postgres:// with the password from store.passwordFile (newline dropped)', () => {
    const file = join(dir, 'pw');
    writeFileSync(file, 's3cret pass\n');
    const c = loadConfig({
      env: { PGPASSWORD: 'from-env' },
      overrides: { 'store.url': 'postgres://podgate@db.example:6543/pgt', 'store.passwordFile': file },
    });
    const t = storeTarget(c);
    assert.equal(t.engine, 'postgres');
    if (t.engine !== 'postgres') return;
    assert.equal(t.host, 'db.example');
    assert.equal(t.port, 6543);
    assert.equal(t.user, 'podgate');
    assert.equal(t.database, 'pgt');
    assert.equal(t.password, 's3cret pass'); // the file wins over PGPASSWORD
    assert.equal(t.sslMode, 'disable');
    assert.equal(t.display, 'postgres://podgate@db.example:6543/pgt');
  });

  it('what the URL leaves out comes from PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE', () => {
    const t = storeTarget(
      loadConfig({
        env: {
          PODGATE_STORE_URL: 'postgres:///',
          PGHOST: '10.0.0.5',
          PGPORT: '5433',
          PGUSER: 'mgr',
          PGDATABASE: 'vpn',
          PGPASSWORD: 'pw',
          PGSSLMODE: 'require',
        },
      }),
    );
    assert.deepEqual(t, {
      engine: 'postgres',
      host: '10.0.0.5',
      port: 5433,
      user: 'mgr',
      database: 'vpn',
      password: 'pw',
      sslMode: 'require',
      sslRootCertFile: undefined,
      poolSize: 10,
      display: 'postgres://mgr@10.0.0.5:5433/vpn',
    });
  });

  const bad: [string, Record<string, unknown>, Record<string, string>, RegExp][] = [
    [
      'a password in the URL',
      { 'store.url': 'postgres://u:pw@h/db' },
      {},
      /^store\.url: must not contain a password/,
    ],
    ['another scheme', { 'store.url': 'mysql://u@h/db' }, {}, /^store\.url: unknown scheme "mysql:"/],
    ['no URL at all', { 'store.url': 'db.example' }, {}, /^store\.url: must be "sqlite:" or postgres:/],
    [
      'an unknown parameter',
      { 'store.url': 'postgres://u@h/db?sslcert=x' },
      {},
      /^store\.url: unknown parameter "sslcert"/,
    ],
    [
      'a bad sslmode',
      { 'store.url': 'postgres://u@h/db?sslmode=maybe' },
      {},
      /^store\.url: sslmode must be one of/,
    ],
    ['no user anywhere', { 'store.url': 'postgres://h/db' }, {}, /^store\.url: needs a user/],
    ['no host anywhere', { 'store.url': 'postgres:///db' }, { PGUSER: 'u' }, /^store\.url: needs a host/],
    ['a bad PGPORT', { 'store.url': 'postgres://u@h/db' }, { PGPORT: 'x' }, /^store\.url: port "x"/],
    ['a bad PGSSLMODE', { 'store.url': 'postgres://u@h/db' }, { PGSSLMODE: 'allow' }, /^PGSSLMODE: "allow"/],
    [
      'a missing password file',
      { 'store.url': 'postgres://u@h/db', 'store.passwordFile': '/nonexistent/pw' },
      {},
      /^store\.passwordFile: cannot read \/nonexistent\/pw \(ENOENT\)/,
    ],
    [
      'a password file with SQLite',
      { 'store.passwordFile': '/etc/hostname' },
      {},
      /^store\.passwordFile: only used with a postgres/,
    ],
    ['a pool of 0', { 'store.url': 'postgres://u@h/db', 'store.poolSize': 0 }, {}, /^store\.poolSize: /],
  ];
  for (const [name, overrides, env, expected] of bad) {
    it(`400 ${name}: the problem names the key`, () => {
      const problems = problemsOf(() => loadConfig({ env, overrides }));
      assert.ok(
        problems.some((p) => expected.test(p)),
        `${problems.join(' | ')} does not match ${String(expected)}`,
      );
    });
  }

  it('an empty password file is refused', () => {
    const file = join(dir, 'empty');
    writeFileSync(file, '\n');
    const problems = problemsOf(() =>
      loadConfig({ env: {}, overrides: { 'store.url': 'postgres://u@h/db', 'store.passwordFile': file } }),
    );
    assert.deepEqual(problems, [`store.passwordFile: ${file} is empty`]);
  });
});

describe('config: store.url with other keys', () => {
  it('backup.dir with a PostgreSQL store is accepted: scheduled backups read the database', () => {
    const config = loadConfig({
      env: { PGPASSWORD: 'x' },
      overrides: {
        'store.url': 'postgres://u@h/db',
        'backup.dir': '/var/backups/podgate',
        'backup.passphraseFile': '/etc/podgate/backup-pass',
      },
    });
    assert.equal(config.backup.dir, '/var/backups/podgate');
  });
});
