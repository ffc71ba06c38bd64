import assert from 'node:assert/strict';
import { expectAppError, newCert, tempStore, type TempStore } from './temp-store.js';

describe('store: certificates', () => {
  let t: TempStore;
  let aliceId: number;
  beforeEach(async () => {
    t = tempStore();
    aliceId = (await t.store.createUser({ name: 'alice', role: 'user', passwordHash: null })).id;
  });
  afterEach(() => t.cleanup());

  it('inserts a certificate and reads every field back, owner name joined', async () => {
    const input = newCert({ ownerId: aliceId });
    const c = await t.store.insertCert(input);
    assert.equal(c.status, 'valid');
    assert.equal(c.revokedAt, null);
    assert.equal(c.revocationReason, null);
    assert.equal(c.lastSeenAt, null);
    assert.equal(c.ownerName, 'alice');
    for (const k of Object.keys(input) as (keyof typeof input)[]) assert.deepEqual(c[k], input[k], k);
    assert.deepEqual(await t.store.getCert(input.serial), c);
    assert.deepEqual(await t.store.getValidCertByCommonName('alice-laptop'), c);
    assert.equal(await t.store.getCert('00FF'), undefined);
  });

  it('has no column that could hold a private key', () => {
    const cols = (t.raw().prepare('PRAGMA table_info(certificates)').all() as { name: string }[]).map(
      (c) => c.name,
    );
    assert.ok(cols.includes('cert_pem'));
    assert.deepEqual(
      cols.filter((c) => /key/i.test(c)),
      ['key_type'],
    );
  });

  it('409 duplicate serial names the field', async () => {
    const c = await t.store.insertCert(newCert());
    await expectAppError(
      () => t.store.insertCert(newCert({ serial: c.serial, commonName: 'other' })),
      'Conflict',
      'serial',
    );
    assert.equal((await t.store.listCerts()).total, 1);
  });

  it('409 duplicate valid common name', async () => {
    await t.store.insertCert(newCert({ commonName: 'x' }));
    const e = expectAppError(
      () => t.store.insertCert(newCert({ commonName: 'x' })),
      'Conflict',
      'commonName',
    );
    assert.equal((await e).message, "commonName 'x' already has a valid certificate");
    assert.equal((await t.store.listCerts()).total, 1);
  });

  it('the partial unique index itself refuses a second valid common name (not just the pre-check)', async () => {
    await t.store.insertCert(newCert({ commonName: 'x' }));
    const raw = t.raw();
    assert.throws(
      () =>
        raw
          .prepare(
            `INSERT INTO certificates (serial, common_name, device_name, kind, key_type, not_before, not_after,
               cert_pem, created_at) VALUES ('AB', 'x', 'd', 'client', 'ec', 'a', 'b', 'p', 'c')`,
          )
          .run(),
      /UNIQUE constraint failed: certificates\.common_name/,
    );
  });

  it('a common name can be re-issued once its certificate is revoked', async () => {
    const old = await t.store.insertCert(newCert({ commonName: 'x' }));
    await t.store.markRevoked(old.serial, 'superseded', new Date());
    const fresh = await t.store.insertCert(newCert({ commonName: 'x' }));
    assert.equal((await t.store.getValidCertByCommonName('x'))?.serial, fresh.serial);
  });

  it('400 unknown owner names the field', async () => {
    await expectAppError(() => t.store.insertCert(newCert({ ownerId: 777 })), 'BadRequest', 'owner');
    assert.equal((await t.store.listCerts()).total, 0);
  });

  const badInputs: [string, Parameters<typeof newCert>[0], string][] = [
    ['400 lower-case serial', { serial: 'abcd' }, 'serial'],
    ['400 odd-length serial', { serial: 'ABC' }, 'serial'],
    ['400 unknown kind', { kind: 'ca' as 'client' }, 'kind'],
    ['400 invalid notAfter', { notAfter: new Date('nope') }, 'notAfter'],
    ['400 notAfter before notBefore', { notAfter: new Date('2025-01-01T00:00:00Z') }, 'notAfter'],
    ['400 empty PEM', { certPem: '' }, 'certPem'],
  ];
  for (const [title, over, field] of badInputs) {
    it(title, async () => {
      await expectAppError(() => t.store.insertCert(newCert(over)), 'BadRequest', field);
      assert.equal((await t.store.listCerts()).total, 0);
    });
  }

  it('marks revoked with time and reason', async () => {
    const c = await t.store.insertCert(newCert());
    const at = new Date('2026-06-01T12:00:00.000Z');
    const r = await t.store.markRevoked(c.serial, 'keyCompromise', at);
    assert.equal(r.status, 'revoked');
    assert.deepEqual(r.revokedAt, at);
    assert.equal(r.revocationReason, 'keyCompromise');
    assert.equal(await t.store.getValidCertByCommonName(c.commonName), undefined);
    assert.deepEqual(await t.store.listRevoked(), [
      {
        serial: c.serial,
        commonName: c.commonName,
        notAfter: c.notAfter,
        revokedAt: at,
        revocationReason: 'keyCompromise',
        issuerKeyId: null,
      },
    ]);
  });

  it('404 revoking an unknown serial', async () => {
    await expectAppError(() => t.store.markRevoked('0A0B', 'unspecified', new Date()), 'NotFound');
  });

  it('409 revoking twice keeps the first time and reason', async () => {
    const c = await t.store.insertCert(newCert());
    const first = new Date('2026-06-01T00:00:00.000Z');
    await t.store.markRevoked(c.serial, 'keyCompromise', first);
    await expectAppError(() => t.store.markRevoked(c.serial, 'superseded', new Date()), 'Conflict', 'serial');
    const again = await t.store.getCert(c.serial);
    assert.deepEqual(again?.revokedAt, first);
    assert.equal(again?.revocationReason, 'keyCompromise');
  });

  it('400 unknown revocation reason changes nothing', async () => {
    const c = await t.store.insertCert(newCert());
    await expectAppError(
      () => t.store.markRevoked(c.serial, 'bored' as 'unspecified', new Date()),
      'BadRequest',
      'reason',
    );
    assert.equal((await t.store.getCert(c.serial))?.status, 'valid');
  });

  it('the schema refuses to un-revoke, or to revoke without time and reason', async () => {
    const c = await t.store.insertCert(newCert());
    const d = await t.store.insertCert(newCert({ commonName: 'other' }));
    await t.store.markRevoked(c.serial, 'superseded', new Date());
    const raw = t.raw();
    assert.throws(
      () =>
        raw
          .prepare(
            "UPDATE certificates SET status = 'valid', revoked_at = NULL, revocation_reason = NULL WHERE serial = ?",
          )
          .run(c.serial),
      /cannot become valid again/,
    );
    assert.throws(
      () => raw.prepare("UPDATE certificates SET status = 'revoked' WHERE serial = ?").run(d.serial),
      /CHECK constraint failed/,
    );
  });

  it('touchLastSeen only moves forward and ignores unknown serials', async () => {
    const c = await t.store.insertCert(newCert());
    const t1 = new Date('2026-03-01T00:00:00.000Z');
    const t0 = new Date('2026-02-01T00:00:00.000Z');
    await t.store.touchLastSeen([c.serial, 'FFFF'], t1);
    assert.deepEqual((await t.store.getCert(c.serial))?.lastSeenAt, t1);
    await t.store.touchLastSeen([c.serial], t0);
    assert.deepEqual((await t.store.getCert(c.serial))?.lastSeenAt, t1);
  });
});
