/**
 * The sign-in throttle with two real `podgate serve` processes on one PostgreSQL database: guesses
 * spread over both replicas get the budget once, not once per replica, and the account's owner still
 * signs in from the address they used before, on either replica.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeBackup } from '../../../src/services/backup-format.js';
import { DEFAULT_THROTTLE } from '../../../src/web/login-throttle.js';
import { sharedPostgres } from '../../helpers/pg-store.js';
import { startServe, type Serving } from '../../helpers/serve.js';

const PASSWORD = 'Two-Serves-Admin-Pass-2026';

describe('serve x2 on one PostgreSQL: the sign-in throttle is shared', function () {
  this.timeout(300_000);
  let dir: string;
  const serves: Serving[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-two-throttle-'));
  });
  after(async () => {
    await Promise.all(serves.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  const login = async (i: number, password: string, forwardedFor?: string) =>
    (await signIn(i, password, forwardedFor)).status;
  const signIn = async (i: number, password: string, forwardedFor?: string) => {
    const res = await fetch(`${serves[i % 2]!.url}/api/v1/login`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}),
      },
      body: JSON.stringify({ name: 'admin', password }),
    });
    const body = (await res.json()) as { csrfToken?: string };
    return { status: res.status, cookie: res.headers.get('set-cookie'), csrfToken: body.csrfToken };
  };

  it('20 parallel wrong passwords over two replicas: the account budget once (401), the rest 429, the owner still in', async () => {
    const pg = await sharedPostgres();
    const database = await pg.createDatabase('throttle');
    writeFileSync(join(dir, 'ca-passphrase'), 'two-replicas-share-this-passphrase\n', { mode: 0o600 });
    writeFileSync(join(dir, 'admin-password'), `${PASSWORD}\n`, { mode: 0o600 });
    const env = {
      PODGATE_STORE_URL: pg.url(database),
      PODGATE_STORE_PASSWORD_FILE: pg.passwordFile,
      PODGATE_CA_PASSPHRASE_FILE: join(dir, 'ca-passphrase'),
      PODGATE_ADMIN_PASSWORD_FILE: join(dir, 'admin-password'),
      PODGATE_WEB_TRUST_PROXY: 'true',
      PODGATE_WEB_TRUSTED_PROXIES: '127.0.0.1/32',
      PGPASSWORD: '',
    };
    serves.push(await startServe({ dataDir: join(dir, 'a'), env }));
    serves.push(await startServe({ dataDir: join(dir, 'b'), env }));

    // the owner signs in once from their usual address (replica A): that address becomes known
    assert.equal(await login(0, PASSWORD, '192.0.2.10'), 200);

    // a guesser elsewhere: 20 wrong passwords at once, half on each replica
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => login(i, 'wrong password', '198.51.100.7')),
    );
    // the owner's sign-in counted against the account's budget too (as in one process: a right
    // password in a guessing burst frees no slot), so perAccount - 1 guesses are evaluated in all
    const budget = DEFAULT_THROTTLE.perAccount - 1;
    const evaluated = statuses.filter((s) => s === 401).length;
    const refused = statuses.filter((s) => s === 429).length;
    assert.equal(evaluated, budget, `statuses ${JSON.stringify(statuses)}`);
    assert.equal(refused, 20 - budget);
    // and neither replica evaluates one more now (the back-off after the budget is 30 s)
    assert.equal(await login(0, 'wrong password', '198.51.100.7'), 429);
    assert.equal(await login(1, 'wrong password', '198.51.100.7'), 429);

    // the owner, from the known address, gets in on the other replica (B never saw that sign-in)
    const owner = await signIn(1, PASSWORD, '192.0.2.10');
    assert.equal(owner.status, 200);

    // a backup on PostgreSQL: the database's rows and CA files, from the replica the admin is on
    const res = await fetch(`${serves[1]!.url}/api/v1/backup`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        cookie: owner.cookie!.split(';')[0]!,
        'x-csrf-token': owner.csrfToken!,
        'x-forwarded-for': '192.0.2.10',
      },
      body: JSON.stringify({ passphrase: 'a backup passphrase of some length' }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const backup = decodeBackup(Buffer.from(await res.arrayBuffer()), 'a backup passphrase of some length');
    assert.deepEqual(backup.entries.map((e) => e.path).sort(), ['ca.crt', 'ca.key.enc', 'podgate.db']);
    assert.ok(backup.info.crlNumber !== null && backup.info.crlNumber >= 1, JSON.stringify(backup.info));
  });
});
