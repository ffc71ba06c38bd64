/**
 * Two real `podgate serve` processes on one PostgreSQL database (the issue's "Must show"): the second
 * replica starts on an empty data dir and takes the CA from the database. 200 profile issues and then
 * 50 revocations are spread over both at once. Afterwards: every revocation made exactly one CRL (the
 * number rose by 50, no gap, none lost), every revoked serial is in the final CRL, no serial and no
 * tunnel address was given twice, and the hourly issue limit held across both (not doubled).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgStore } from '../../../src/store/pg/pg-store.js';
import { runCli } from '../../helpers/cli.js';
import { pgTarget, sharedPostgres } from '../../helpers/pg-store.js';
import { startServe, type Serving } from '../../helpers/serve.js';

const ISSUES = 200;
const LIMIT = 150; // devices.issuesPerHour for the one user who issues them all
const REVOKES = 50;

describe('serve x2 on one PostgreSQL: parallel issues and revocations', function () {
  this.timeout(600_000);
  let dir: string;
  const serves: Serving[] = [];
  let store: PgStore | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-two-serves-'));
  });
  after(async () => {
    await Promise.all(serves.map((s) => s.stop()));
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('CRL numbers rise by one per revocation, all revoked serials in the final CRL, nothing twice, limits shared', async () => {
    const pg = await sharedPostgres();
    const database = await pg.createDatabase('two');
    writeFileSync(join(dir, 'ca-passphrase'), 'two-replicas-share-this-passphrase\n', { mode: 0o600 });
    writeFileSync(join(dir, 'admin-password'), 'Two-Serves-Admin-Pass-2026\n', { mode: 0o600 });
    const env = {
      PODGATE_STORE_URL: pg.url(database),
      PODGATE_STORE_PASSWORD_FILE: pg.passwordFile,
      PODGATE_CA_PASSPHRASE_FILE: join(dir, 'ca-passphrase'),
      PODGATE_ADMIN_PASSWORD_FILE: join(dir, 'admin-password'),
      PODGATE_DEVICES_ISSUES_PER_HOUR: String(LIMIT),
      PODGATE_DEVICES_MAX_VALID_PER_USER: '1000',
      PODGATE_DEVICES_KEYGEN_QUEUE: '1000',
      PODGATE_DEVICES_KEYGEN_CONCURRENCY: '2',
      PODGATE_STORE_LEASE_SECONDS: '5',
      PGPASSWORD: '',
    };
    serves.push(await startServe({ dataDir: join(dir, 'a'), env }));
    serves.push(await startServe({ dataDir: join(dir, 'b'), env })); // empty data dir: CA from the database
    const tok = await runCli(['token', 'create', 'admin', '--json', '--data-dir', join(dir, 'cli')], env);
    assert.equal(tok.code, 0, tok.stderr);
    const token = (JSON.parse(tok.stdout) as { token: string }).token;
    const call = (i: number, method: string, path: string, body?: unknown) =>
      fetch(`${serves[i % 2]!.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });

    store = await PgStore.open(pgTarget(pg, database, 2));
    const crlBefore = (await store.getCrl())!.number;

    const issued = await Promise.all(
      Array.from({ length: ISSUES }, async (_, i) => {
        const res = await call(i, 'POST', '/api/v1/devices', { name: `dev-${i}`, keyType: 'ec-p256' });
        const json = (await res.json()) as { device?: { serial: string }; error?: unknown };
        return { status: res.status, serial: json.device?.serial, error: json.error };
      }),
    );
    const ok = issued.filter((r) => r.status === 201);
    const limited = issued.filter((r) => r.status === 429);
    assert.equal(
      ok.length,
      LIMIT,
      `201s: ${ok.length}, statuses ${JSON.stringify(issued.map((r) => r.status))}, errors other than ` +
        JSON.stringify(issued.filter((r) => r.status !== 201 && r.status !== 429).map((r) => r.error)),
    );
    assert.equal(limited.length, ISSUES - LIMIT, 'the rest were refused by the shared hourly limit');
    const serials = ok.map((r) => r.serial!);
    assert.equal(new Set(serials).size, serials.length, 'no serial twice');

    const victims = serials.slice(0, REVOKES);
    const revoked = await Promise.all(
      victims.map(async (serial, i) => {
        const res = await call(i, 'POST', `/api/v1/certs/${serial}/revoke`, { reason: 'keyCompromise' });
        return res.status;
      }),
    );
    assert.deepEqual(new Set(revoked), new Set([200]));

    const crl = (await store.getCrl())!;
    assert.equal(crl.number, crlBefore + REVOKES, 'each revocation made exactly one CRL: no gap, none lost');
    const text = execFileSync('openssl', ['crl', '-noout', '-text'], { input: crl.pem, encoding: 'utf8' });
    const inCrl = new Set([...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!));
    for (const s of victims)
      assert.ok(inCrl.has(s.replace(/^0+/, '')) || inCrl.has(s), `${s} in the final CRL`);
    const revokeAudit = await store.listAudit({ action: 'cert.revoke', limit: 1000 });
    assert.equal(revokeAudit.length, REVOKES);

    const addresses = await store.listAddresses();
    assert.equal(new Set(addresses.map((a) => a.address)).size, addresses.length, 'no tunnel address twice');
    const all = await store.listCerts({ kind: 'client' });
    assert.equal(all.total, LIMIT);
  });
});
