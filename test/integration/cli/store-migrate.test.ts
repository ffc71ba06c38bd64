/**
 * `podgate store migrate --to postgres://…` through the real CLI: a data dir made by `podgate init`
 * (plus a revoked certificate) moves into an empty PostgreSQL database; the password comes from
 * --password-file; bad input exits 2 naming the option, and nothing is written.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, tempDir } from '../../helpers/cli.js';
import { sharedPostgres } from '../../helpers/pg-store.js';

describe('cli: store migrate --to postgres://', function () {
  this.timeout(120_000);
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir('podgate-cli-pgmig-');
  });
  afterEach(() => t.cleanup());

  it('copies a data dir made by init; a second run into the same database exits 2 (409), naming the reason', async () => {
    const pg = await sharedPostgres();
    const dataDir = join(t.dir, 'data');
    const init = await runCli(['init', '--data-dir', dataDir], { PODGATE_VPN_ENDPOINTS: '172.18.12.21' });
    assert.equal(init.code, 0, init.stderr);
    const issue = await runCli(
      [
        'cert',
        'issue',
        'admin-laptop',
        '--owner',
        'admin',
        '--out',
        join(t.dir, 'a.ovpn'),
        '--data-dir',
        dataDir,
      ],
      {
        PODGATE_VPN_ENDPOINTS: '172.18.12.21',
      },
    );
    assert.equal(issue.code, 0, issue.stderr);
    const revoke = await runCli([
      'cert',
      'revoke',
      'admin-laptop',
      '--reason',
      'keyCompromise',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(revoke.code, 0, revoke.stderr);

    const db = await pg.createDatabase('cli');
    const args = [
      'store',
      'migrate',
      '--to',
      pg.url(db),
      '--password-file',
      pg.passwordFile,
      '--data-dir',
      dataDir,
    ];
    const r = await runCli([...args, '--json'], { PGPASSWORD: '' });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      tables: { name: string; rows: number }[];
      crlNumber: number;
      files: string[];
    };
    assert.equal(report.tables.find((x) => x.name === 'users')!.rows, 1);
    assert.equal(report.tables.find((x) => x.name === 'certificates')!.rows, 2); // the server's and the laptop's
    assert.ok(report.crlNumber >= 2, 'the revocation raised the CRL number');
    assert.deepEqual(report.files, ['ca.crt', 'ca.key.enc']);

    const again = await runCli(args);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /already holds podgate data/);
  });

  it('exit 2: a password in --to, or a URL that is not postgres://', async () => {
    const dataDir = join(t.dir, 'data');
    const withPw = await runCli([
      'store',
      'migrate',
      '--to',
      'postgres://u:secret@127.0.0.1/db',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(withPw.code, 2);
    assert.match(withPw.stderr, /--to: must not contain a password/);
    const other = await runCli(['store', 'migrate', '--to', 'mysql://u@h/db', '--data-dir', dataDir]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /--to must be a postgres:\/\/ URL/);
  });
});
