import assert from 'node:assert/strict';
import { AppError, BadRequest } from '../../../src/lib/errors.js';
import {
  CertificateAuthority,
  createCa,
  verifyCrl,
  type CaKeyType,
  type CaMaterial,
  type IssuedCertificate,
  type RevocationReason,
  type RevokedEntry,
} from '../../../src/pki/index.js';
import { OpensslWorkspace } from './openssl.js';

const DAY = 86_400_000;

function crlRejected(pattern: RegExp) {
  return (e: unknown) => e instanceof AppError && e.code === 'crl_invalid' && pattern.test(e.message);
}

for (const caType of ['rsa-3072', 'ec-p384'] as CaKeyType[]) {
  describe(`pki CRL from a ${caType} CA (checked by openssl)`, function () {
    this.timeout(60_000);
    const ws = new OpensslWorkspace();
    let material: CaMaterial;
    let ca: CertificateAuthority;
    let certs: IssuedCertificate[];
    let crlPem: string;
    const now = new Date();
    after(() => ws.cleanup());

    before(async () => {
      material = await createCa({ commonName: 'podgate CA', keyType: caType, days: 3650 });
      ca = CertificateAuthority.load(material);
      ws.file('ca.pem', material.certPem);
      certs = [];
      for (const name of ['alice', 'bob', 'carol']) {
        const c = await ca.issue({ kind: 'client', commonName: name, days: 30 });
        ws.file(`${name}.pem`, c.certPem);
        certs.push(c);
      }
      crlPem = ca.buildCrl({
        number: 7,
        entries: [{ serial: certs[1]!.serial, revokedAt: now, reason: 'keyCompromise' }],
        nextUpdateDays: 30,
        now,
      });
      ws.file('crl.pem', crlPem);
    });

    it('openssl verify -crl_check: the revoked one is "certificate revoked", the others OK', async () => {
      for (const [i, name] of ['alice', 'bob', 'carol'].entries()) {
        const r = await ws.run([
          'verify',
          '-crl_check',
          '-CRLfile',
          'crl.pem',
          '-CAfile',
          'ca.pem',
          `${name}.pem`,
        ]);
        if (i === 1) {
          assert.notEqual(r.code, 0);
          assert.match(r.stdout + r.stderr, /certificate revoked/);
        } else {
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.match(r.stdout, /: OK/);
        }
      }
    });

    it('openssl crl -verify accepts it; -text shows v2, CRL number, AKI, reason, the serial', async () => {
      const r = await ws.run(['crl', '-in', 'crl.pem', '-verify', '-CAfile', 'ca.pem', '-noout']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout + r.stderr, /verify OK/);
      const text = await ws.ok(['crl', '-in', 'crl.pem', '-noout', '-text']);
      assert.match(text, /Version 2 \(0x1\)/);
      assert.match(text, /X509v3 CRL Number: *\n\s+7\n/);
      assert.match(text, /X509v3 Authority Key Identifier: *\n\s+[0-9A-F:]{59}\n/);
      assert.match(text, new RegExp(`Serial Number: ${certs[1]!.serial}\\n`));
      assert.match(text, /X509v3 CRL Reason Code: *\n\s+Key Compromise\n/);
      const caSki = /Subject Key Identifier: *\n\s+(\S+)/.exec(
        await ws.ok(['x509', '-in', 'ca.pem', '-noout', '-text']),
      )![1];
      assert.match(text, new RegExp(`Authority Key Identifier: *\\n\\s+${caSki}\\n`));
    });

    it('verifyCrl returns number, serials, thisUpdate = now - 5 min, nextUpdate = now + days', () => {
      const info = verifyCrl(crlPem, material.certPem);
      assert.equal(info.number, 7);
      assert.deepEqual(info.revokedSerials, [certs[1]!.serial]);
      const sec = (ms: number) => Math.floor(ms / 1000) * 1000;
      assert.equal(info.thisUpdate.getTime(), sec(now.getTime() - 5 * 60_000));
      assert.equal(info.nextUpdate.getTime(), sec(now.getTime() + 30 * DAY));
    });

    it('an empty CRL parses with openssl and verifyCrl, and revokes nothing', async () => {
      const empty = ca.buildCrl({ number: 1, entries: [], nextUpdateDays: 30 });
      ws.file('empty.pem', empty);
      assert.match(await ws.ok(['crl', '-in', 'empty.pem', '-noout', '-text']), /No Revoked Certificates/);
      assert.equal(
        (await ws.run(['crl', '-in', 'empty.pem', '-verify', '-CAfile', 'ca.pem', '-noout'])).code,
        0,
      );
      const r = await ws.run([
        'verify',
        '-crl_check',
        '-CRLfile',
        'empty.pem',
        '-CAfile',
        'ca.pem',
        'bob.pem',
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(verifyCrl(empty, material.certPem).revokedSerials, []);
    });
  });
}

describe('pki CRL: serial edge cases, reasons, rejection, scale', function () {
  this.timeout(120_000);
  const ws = new OpensslWorkspace();
  let material: CaMaterial;
  let ca: CertificateAuthority;
  after(() => ws.cleanup());
  before(async () => {
    material = await createCa({ commonName: 'podgate CA', keyType: 'ec-p384', days: 3650 });
    ca = CertificateAuthority.load(material);
    ws.file('ca.pem', material.certPem);
  });

  it('a high-bit serial is revoked by openssl and read back unchanged', async () => {
    const highBit = CertificateAuthority.load(material, { serialBytes: () => Buffer.alloc(16, 0xfe) });
    const c = await highBit.issue({ kind: 'client', commonName: 'high', days: 1 });
    assert.equal(c.serial, 'FE'.repeat(16));
    ws.file('high.pem', c.certPem);
    const crl = ca.buildCrl({
      number: 2,
      entries: [{ serial: c.serial, revokedAt: new Date(), reason: 'superseded' }],
      nextUpdateDays: 30,
    });
    ws.file('high-crl.pem', crl);
    const r = await ws.run([
      'verify',
      '-crl_check',
      '-CRLfile',
      'high-crl.pem',
      '-CAfile',
      'ca.pem',
      'high.pem',
    ]);
    assert.match(r.stdout + r.stderr, /certificate revoked/);
    assert.match(
      await ws.ok(['crl', '-in', 'high-crl.pem', '-noout', '-text']),
      new RegExp(`Serial Number: ${c.serial}\\n`),
    );
    assert.deepEqual(verifyCrl(crl, material.certPem).revokedSerials, [c.serial]);
  });

  it('every reason reads back by name in openssl; "unspecified" writes no reason extension', async () => {
    const names: Record<RevocationReason, string | null> = {
      unspecified: null,
      keyCompromise: 'Key Compromise',
      caCompromise: 'CA Compromise',
      affiliationChanged: 'Affiliation Changed',
      superseded: 'Superseded',
      cessationOfOperation: 'Cessation Of Operation',
      certificateHold: 'Certificate Hold',
      privilegeWithdrawn: 'Privilege Withdrawn',
    };
    const entries: RevokedEntry[] = Object.keys(names).map((reason, i) => ({
      serial: (0x10 + i).toString(16).toUpperCase(),
      revokedAt: new Date(Date.now() - i * DAY),
      reason: reason as RevocationReason,
    }));
    ws.file('reasons.pem', ca.buildCrl({ number: 3, entries, nextUpdateDays: 30 }));
    const text = await ws.ok(['crl', '-in', 'reasons.pem', '-noout', '-text']);
    const blocks = text.split(/Serial Number: /).slice(1);
    assert.equal(blocks.length, entries.length);
    entries.forEach((e, i) => {
      assert.ok(blocks[i]!.startsWith(e.serial), blocks[i]);
      const expected = names[e.reason];
      if (expected === null) assert.doesNotMatch(blocks[i]!, /CRL Reason Code/);
      else assert.match(blocks[i]!, new RegExp(`CRL Reason Code: *\\n\\s+${expected}\\n`));
    });
  });

  it('verifyCrl rejects a CRL signed by another CA with the same name (bad signature); openssl agrees', async () => {
    const twin = CertificateAuthority.load(
      await createCa({ commonName: 'podgate CA', keyType: 'ec-p384', days: 10 }),
    );
    const crl = twin.buildCrl({ number: 1, entries: [], nextUpdateDays: 30 });
    ws.file('twin.pem', crl);
    assert.throws(() => verifyCrl(crl, material.certPem), crlRejected(/signature/));
    // openssl 3.0 prints "verify failure" but still exits 0 here.
    const r = await ws.run(['crl', '-in', 'twin.pem', '-verify', '-CAfile', 'ca.pem', '-noout']);
    assert.match(r.stdout + r.stderr, /verify failure/);
  });

  it('verifyCrl rejects a CRL from a differently named CA (wrong issuer)', async () => {
    const other = CertificateAuthority.load(
      await createCa({ commonName: 'other CA', keyType: 'rsa-3072', days: 10 }),
    );
    const crl = other.buildCrl({ number: 1, entries: [], nextUpdateDays: 30 });
    assert.throws(() => verifyCrl(crl, material.certPem), crlRejected(/issuer/));
  });

  it('verifyCrl rejects an expired CRL and one not yet valid; openssl says the same', async () => {
    const expired = ca.buildCrl({
      number: 4,
      entries: [],
      nextUpdateDays: 30,
      now: new Date(Date.now() - 31 * DAY),
    });
    assert.throws(() => verifyCrl(expired, material.certPem), crlRejected(/expired/));
    ws.file('expired.pem', expired);
    ws.file('leaf.pem', (await ca.issue({ kind: 'client', commonName: 'leaf', days: 1 })).certPem);
    const r = await ws.run([
      'verify',
      '-crl_check',
      '-CRLfile',
      'expired.pem',
      '-CAfile',
      'ca.pem',
      'leaf.pem',
    ]);
    assert.match(r.stdout + r.stderr, /CRL has expired/);

    const future = ca.buildCrl({
      number: 5,
      entries: [],
      nextUpdateDays: 30,
      now: new Date(Date.now() + DAY),
    });
    assert.throws(() => verifyCrl(future, material.certPem), crlRejected(/future/));
    ws.file('future.pem', future);
    const f = await ws.run([
      'verify',
      '-crl_check',
      '-CRLfile',
      'future.pem',
      '-CAfile',
      'ca.pem',
      'leaf.pem',
    ]);
    assert.match(f.stdout + f.stderr, /CRL is not yet valid/);
  });

  it('verifyCrl rejects a tampered CRL and text that is not a CRL', () => {
    const crl = ca.buildCrl({
      number: 6,
      entries: [{ serial: 'AB', revokedAt: new Date(), reason: 'unspecified' }],
      nextUpdateDays: 30,
    });
    const der = Buffer.from(crl.replace(/-----[A-Z0-9 ]+-----|\n/g, ''), 'base64');
    // The serial AB (DER 02 02 00 AB) sits in the signed part: change it to AC.
    const at = der.indexOf(Buffer.from([0x02, 0x02, 0x00, 0xab]));
    assert.ok(at > 0);
    der[at + 3] = 0xac;
    const tampered = `-----BEGIN X509 CRL-----\n${der.toString('base64')}\n-----END X509 CRL-----\n`;
    assert.throws(() => verifyCrl(tampered, material.certPem), crlRejected(/signature/));
    assert.throws(() => verifyCrl('hello', material.certPem), crlRejected(/not a readable/));
    assert.throws(() => verifyCrl(material.certPem, material.certPem), crlRejected(/not a readable/));
  });

  it('10,000 entries: openssl lists them all and verifyCrl returns them in order', async () => {
    const entries: RevokedEntry[] = Array.from({ length: 10_000 }, (_, i) => ({
      serial: (0x1000000 + i).toString(16).toUpperCase().padStart(8, '0'),
      revokedAt: new Date(Date.now() - i * 1000),
      reason: i % 2 ? 'keyCompromise' : 'unspecified',
    }));
    const t0 = performance.now();
    const crl = ca.buildCrl({ number: 8, entries, nextUpdateDays: 30 });
    console.log(`      built and verified a 10,000-entry CRL in ${(performance.now() - t0).toFixed(1)} ms`);
    ws.file('big.pem', crl);
    const r = await ws.run(['crl', '-in', 'big.pem', '-verify', '-CAfile', 'ca.pem', '-noout', '-text']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.match(/Serial Number: /g)?.length, 10_000);
    assert.deepEqual(
      verifyCrl(crl, material.certPem).revokedSerials,
      entries.map((e) => e.serial),
    );
  });

  it('400 bad entries or options name the field and build nothing', () => {
    const cases: [Parameters<CertificateAuthority['buildCrl']>[0], string][] = [
      [
        {
          number: 1,
          entries: [{ serial: 'XYZ', revokedAt: new Date(), reason: 'superseded' }],
          nextUpdateDays: 30,
        },
        'entries[0].serial',
      ],
      [
        {
          number: 1,
          entries: [{ serial: 'ABC', revokedAt: new Date(), reason: 'superseded' }],
          nextUpdateDays: 30,
        },
        'entries[0].serial',
      ],
      [
        {
          number: 1,
          entries: [
            { serial: '0A', revokedAt: new Date(), reason: 'superseded' },
            { serial: '000A', revokedAt: new Date(), reason: 'superseded' },
          ],
          nextUpdateDays: 30,
        },
        'entries[1].serial',
      ],
      [
        {
          number: 1,
          entries: [{ serial: 'AA', revokedAt: new Date('x'), reason: 'superseded' }],
          nextUpdateDays: 30,
        },
        'entries[0].revokedAt',
      ],
      [
        {
          number: 1,
          entries: [{ serial: 'AA', revokedAt: new Date(), reason: 'removeFromCRL' as never }],
          nextUpdateDays: 30,
        },
        'entries[0].reason',
      ],
      [{ number: -1, entries: [], nextUpdateDays: 30 }, 'number'],
      [{ number: 1.5, entries: [], nextUpdateDays: 30 }, 'number'],
      [{ number: 1, entries: [], nextUpdateDays: 0 }, 'nextUpdateDays'],
    ];
    for (const [o, field] of cases) {
      assert.throws(
        () => ca.buildCrl(o),
        (e: unknown) => e instanceof BadRequest && e.field === field,
        field,
      );
    }
  });
});
