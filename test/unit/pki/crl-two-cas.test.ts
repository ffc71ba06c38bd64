import assert from 'node:assert/strict';
import { AppError } from '../../../src/lib/errors.js';
import { CertificateAuthority, createCa, verifyCrl, type IssuedCertificate } from '../../../src/pki/index.js';
import { OpensslWorkspace } from './openssl.js';

const rejected = (pattern: RegExp) => (e: unknown) =>
  e instanceof AppError && e.code === 'crl_invalid' && pattern.test(e.message);

describe('pki: CA rotation overlap — a CA bundle and one CRL per CA (checked by openssl)', function () {
  this.timeout(60_000);
  const ws = new OpensslWorkspace();
  let oldCa: CertificateAuthority;
  let newCa: CertificateAuthority;
  let third: CertificateAuthority;
  const certs: Record<string, IssuedCertificate> = {};
  const now = new Date();
  const crlOf = (ca: CertificateAuthority, number: number, serials: string[]) =>
    ca.buildCrl({
      number,
      nextUpdateDays: 30,
      now,
      entries: serials.map((serial) => ({ serial, revokedAt: now, reason: 'keyCompromise' as const })),
    });
  after(() => ws.cleanup());

  before(async () => {
    oldCa = CertificateAuthority.load(
      await createCa({ commonName: 'podgate CA', keyType: 'ec-p384', days: 3650 }),
    );
    newCa = CertificateAuthority.load(
      await createCa({ commonName: 'podgate CA 202612010000', keyType: 'rsa-3072', days: 3650 }),
    );
    third = CertificateAuthority.load(
      await createCa({ commonName: 'other CA', keyType: 'ec-p384', days: 3650 }),
    );
    for (const [name, ca] of [
      ['old-ok', oldCa],
      ['old-bad', oldCa],
      ['new-ok', newCa],
      ['new-bad', newCa],
    ] as const) {
      certs[name] = await ca.issue({ kind: 'client', commonName: name, days: 30 });
      ws.file(`${name}.pem`, certs[name].certPem);
    }
  });

  it('each CRL verifies against its own issuer; the serials are the union; openssl agrees per certificate', async () => {
    const bundle = newCa.certPem + oldCa.certPem;
    const crls = crlOf(newCa, 7, [certs['new-bad']!.serial]) + crlOf(oldCa, 7, [certs['old-bad']!.serial]);
    const info = verifyCrl(crls, bundle, now);
    assert.equal(info.number, 7);
    assert.deepEqual(
      new Set(info.revokedSerials),
      new Set([certs['new-bad']!.serial, certs['old-bad']!.serial]),
    );
    ws.file('bundle.pem', bundle);
    ws.file('crls.pem', crls);
    for (const name of ['old-ok', 'new-ok']) {
      const out = await ws.ok([
        'verify',
        '-crl_check',
        '-CAfile',
        ws.path('bundle.pem'),
        '-CRLfile',
        ws.path('crls.pem'),
        ws.path(`${name}.pem`),
      ]);
      assert.match(out, /OK/);
    }
    for (const name of ['old-bad', 'new-bad']) {
      const r = await ws.run([
        'verify',
        '-crl_check',
        '-CAfile',
        ws.path('bundle.pem'),
        '-CRLfile',
        ws.path('crls.pem'),
        ws.path(`${name}.pem`),
      ]);
      assert.match(r.stdout + r.stderr, /certificate revoked/);
    }
  });

  it('refuses a missing CRL for one CA, a CRL from an untrusted CA, and CRLs with different numbers', () => {
    const bundle = newCa.certPem + oldCa.certPem;
    assert.throws(() => verifyCrl(crlOf(newCa, 3, []), bundle, now), rejected(/expected one CRL for CA #2/));
    assert.throws(
      () => verifyCrl(crlOf(newCa, 3, []) + crlOf(oldCa, 3, []) + crlOf(third, 3, []), bundle, now),
      rejected(/from none of the trusted CAs/),
    );
    assert.throws(
      () => verifyCrl(crlOf(newCa, 3, []) + crlOf(oldCa, 4, []), bundle, now),
      rejected(/different CRL numbers/),
    );
    // A CRL set for two CAs against a single trusted CA (an agent not yet restarted after rotation).
    assert.throws(
      () => verifyCrl(crlOf(newCa, 3, []) + crlOf(oldCa, 3, []), oldCa.certPem, now),
      rejected(/none of the trusted/),
    );
    // The single-CA path is unchanged.
    assert.equal(verifyCrl(crlOf(oldCa, 9, []), oldCa.certPem, now).number, 9);
  });
});
