import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { AppError, BadRequest } from '../../../src/lib/errors.js';
import {
  CertificateAuthority,
  certificateInfo,
  createCa,
  publicKeyMatches,
  type CaKeyType,
  type CaMaterial,
  type ClientKeyType,
} from '../../../src/pki/index.js';
import { OpensslWorkspace } from './openssl.js';

const CA_TYPES: CaKeyType[] = ['rsa-3072', 'ec-p384'];
const CLIENT_TYPES: ClientKeyType[] = ['ec-p256', 'rsa-2048', 'rsa-3072'];

/** The value openssl prints under an extension heading in `x509 -text`. */
function extension(text: string, heading: string): string {
  const m = new RegExp(`X509v3 ${heading}:( critical)? *\\n\\s+(.*)\\n`).exec(text);
  assert.ok(m, `extension ${heading} missing in:\n${text}`);
  return `${m[1] ? 'critical ' : ''}${m[2]!.trim()}`;
}

for (const caType of CA_TYPES) {
  describe(`pki issue with a ${caType} CA (checked by openssl)`, function () {
    this.timeout(120_000);
    const ws = new OpensslWorkspace();
    let material: CaMaterial;
    let ca: CertificateAuthority;
    let caPath: string;

    before(async () => {
      material = await createCa({ commonName: 'podgate CA', keyType: caType, days: 3650 });
      ca = CertificateAuthority.load(material);
      caPath = ws.file('ca.pem', material.certPem);
    });
    after(() => ws.cleanup());

    it('CA: self-signed, CA:TRUE critical, keyCertSign+cRLSign critical, SKI = AKI', async () => {
      assert.match(await ws.ok(['verify', '-x509_strict', '-CAfile', caPath, caPath]), /: OK/);
      const text = await ws.ok(['x509', '-in', caPath, '-noout', '-text']);
      assert.equal(extension(text, 'Basic Constraints'), 'critical CA:TRUE');
      assert.equal(extension(text, 'Key Usage'), 'critical Certificate Sign, CRL Sign');
      assert.equal(extension(text, 'Authority Key Identifier'), extension(text, 'Subject Key Identifier'));
      assert.match(text, /Subject: CN = podgate CA\n/);
      assert.equal(ca.commonName, 'podgate CA');
      const alg = caType === 'rsa-3072' ? 'sha256WithRSAEncryption' : 'ecdsa-with-SHA384';
      assert.match(text, new RegExp(`Signature Algorithm: ${alg}`));
      assert.match(text, caType === 'rsa-3072' ? /Public-Key: \(3072 bit\)/ : /NIST CURVE: P-384/);
    });

    for (const keyType of CLIENT_TYPES) {
      it(`client ${keyType}: openssl verify -x509_strict -purpose sslclient OK, extensions, key matches`, async () => {
        const c = await ca.issue({ kind: 'client', commonName: `alice_${keyType}`, days: 365, keyType });
        const certPath = ws.file(`${keyType}.pem`, c.certPem);
        const keyPath = ws.file(`${keyType}.key`, c.keyPem!);
        const verify = await ws.ok([
          'verify',
          '-x509_strict',
          '-purpose',
          'sslclient',
          '-CAfile',
          caPath,
          certPath,
        ]);
        assert.match(verify, /: OK/);
        // Negative control: a client certificate is not a server certificate.
        const asServer = await ws.run([
          'verify',
          '-x509_strict',
          '-purpose',
          'sslserver',
          '-CAfile',
          caPath,
          certPath,
        ]);
        assert.notEqual(asServer.code, 0);

        const text = await ws.ok(['x509', '-in', certPath, '-noout', '-text']);
        const caText = await ws.ok(['x509', '-in', caPath, '-noout', '-text']);
        assert.equal(extension(text, 'Basic Constraints'), 'critical CA:FALSE');
        assert.equal(extension(text, 'Extended Key Usage'), 'TLS Web Client Authentication');
        const ku = keyType.startsWith('rsa')
          ? 'critical Digital Signature, Key Encipherment'
          : 'critical Digital Signature';
        assert.equal(extension(text, 'Key Usage'), ku);
        assert.equal(
          extension(text, 'Authority Key Identifier'),
          extension(caText, 'Subject Key Identifier'),
        );
        assert.match(extension(text, 'Subject Key Identifier'), /^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
        assert.match(text, new RegExp(`Subject: CN = alice_${keyType}\\n`));
        assert.match(text, /Issuer: CN = podgate CA\n/);

        assert.equal(c.keyType, keyType);
        assert.equal(c.commonName, `alice_${keyType}`);
        assert.ok(publicKeyMatches(c.certPem, c.keyPem!));
        // PKCS#8 PEM: re-exporting as PKCS#8 gives the same text back.
        assert.equal(createPrivateKey(c.keyPem!).export({ type: 'pkcs8', format: 'pem' }), c.keyPem);
        const fromKey = await ws.ok(['pkey', '-in', keyPath, '-pubout']);
        const fromCert = await ws.ok(['x509', '-in', certPath, '-noout', '-pubkey']);
        assert.equal(fromKey, fromCert);

        assert.equal(
          (await ws.ok(['x509', '-in', certPath, '-noout', '-serial'])).trim(),
          `serial=${c.serial}`,
        );
        const x = new X509Certificate(c.certPem);
        const caX = new X509Certificate(material.certPem);
        assert.ok(x.verify(caX.publicKey), 'Node verifies the signature with the CA key');
        assert.ok(x.checkIssued(caX), 'Node links issuer and AKI to the CA');
        assert.equal(x.ca, false);
        assert.equal(new Date(x.validFrom).getTime(), c.notBefore.getTime());
        assert.equal(new Date(x.validTo).getTime(), c.notAfter.getTime());
      });
    }

    it('server: openssl verify -purpose sslserver OK, serverAuth, digitalSignature+keyEncipherment', async () => {
      const s = await ca.issue({ kind: 'server', commonName: 'podgate-server', days: 825 });
      const certPath = ws.file('server.pem', s.certPem);
      assert.match(
        await ws.ok(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caPath, certPath]),
        /: OK/,
      );
      const text = await ws.ok(['x509', '-in', certPath, '-noout', '-text']);
      assert.equal(extension(text, 'Extended Key Usage'), 'TLS Web Server Authentication');
      assert.equal(extension(text, 'Key Usage'), 'critical Digital Signature, Key Encipherment');
      assert.equal(extension(text, 'Basic Constraints'), 'critical CA:FALSE');
      assert.equal(s.keyType, 'ec-p256');
    });

    it('gateway: a client certificate (clientAuth) for the office gateway', async () => {
      const g = await ca.issue({ kind: 'gateway', commonName: 'office-gw', days: 365 });
      const certPath = ws.file('gw.pem', g.certPem);
      assert.match(
        await ws.ok(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caPath, certPath]),
        /: OK/,
      );
      const text = await ws.ok(['x509', '-in', certPath, '-noout', '-text']);
      assert.equal(extension(text, 'Extended Key Usage'), 'TLS Web Client Authentication');
    });

    it('notBefore is 5 minutes before now; validity is capped at the CA notAfter', async () => {
      const now = new Date('2027-03-01T10:00:00.750Z');
      const c = await ca.issue({ kind: 'client', commonName: 'clock', days: 30, now });
      assert.equal(c.notBefore.toISOString(), '2027-03-01T09:55:00.000Z');
      assert.equal(c.notAfter.toISOString(), '2027-03-31T10:00:00.000Z');
      const long = await ca.issue({ kind: 'client', commonName: 'long', days: 36_500 });
      assert.equal(long.notAfter.getTime(), ca.notAfter.getTime());
    });

    it('certificateInfo agrees with openssl (serial, CN, dates, SHA-256 fingerprint, key type)', async () => {
      const c = await ca.issue({ kind: 'client', commonName: 'info.test', days: 10, keyType: 'rsa-2048' });
      const path = ws.file('info.pem', c.certPem);
      const info = certificateInfo(c.certPem);
      const out = await ws.ok([
        'x509',
        '-in',
        path,
        '-noout',
        '-serial',
        '-subject',
        '-fingerprint',
        '-sha256',
      ]);
      assert.match(out, new RegExp(`serial=${info.serial}\\n`));
      assert.match(out, new RegExp(`subject=CN = ${info.commonName}\\n`));
      assert.match(out, new RegExp(`sha256 Fingerprint=${info.fingerprintSha256}\\n`, 'i'));
      assert.equal(info.keyType, 'rsa-2048');
      assert.equal(info.notBefore.getTime(), c.notBefore.getTime());
      assert.equal(info.notAfter.getTime(), c.notAfter.getTime());
      assert.equal(certificateInfo(material.certPem).keyType, caType);
    });
  });
}

describe('pki issue: serials, algorithm identifiers, bad input', function () {
  this.timeout(60_000);
  const ws = new OpensslWorkspace();
  let material: CaMaterial;
  after(() => ws.cleanup());
  before(async () => {
    material = await createCa({ commonName: 'serial CA', keyType: 'ec-p384', days: 30 });
    ws.file('ca.pem', material.certPem);
  });

  const cases: { name: string; bytes: Buffer; serial: string }[] = [
    { name: 'high bit set (DER needs a 00 prefix)', bytes: Buffer.alloc(16, 0xff), serial: 'FF'.repeat(16) },
    {
      name: 'leading zero byte (dropped)',
      bytes: Buffer.from('007f' + 'ab'.repeat(14), 'hex'),
      serial: '7F' + 'AB'.repeat(14),
    },
    {
      name: 'leading zero then high bit',
      bytes: Buffer.from('0080' + '01'.repeat(14), 'hex'),
      serial: '80' + '01'.repeat(14),
    },
  ];
  for (const tc of cases) {
    it(`serial ${tc.name}: openssl prints ${tc.serial.slice(0, 6)}... and verifies -x509_strict`, async () => {
      const ca = CertificateAuthority.load(material, { serialBytes: () => Buffer.from(tc.bytes) });
      const c = await ca.issue({ kind: 'client', commonName: 'serial', days: 1 });
      assert.equal(c.serial, tc.serial);
      const path = ws.file('serial.pem', c.certPem);
      assert.equal((await ws.ok(['x509', '-in', path, '-noout', '-serial'])).trim(), `serial=${tc.serial}`);
      assert.equal(new X509Certificate(c.certPem).serialNumber, tc.serial);
      assert.match(await ws.ok(['verify', '-x509_strict', '-CAfile', ws.path('ca.pem'), path]), /: OK/);
    });
  }

  it('random serials are 128 bits, upper-case hex, as openssl prints them', async () => {
    const ca = CertificateAuthority.load(material);
    const serials = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const c = await ca.issue({ kind: 'client', commonName: `s${i}`, days: 1 });
      assert.match(c.serial, /^([0-9A-F]{2}){1,16}$/);
      assert.equal(new X509Certificate(c.certPem).serialNumber, c.serial);
      serials.add(c.serial);
    }
    assert.equal(serials.size, 20);
  });

  it('ECDSA AlgorithmIdentifier has no NULL parameter (RFC 5758)', async () => {
    const ca = CertificateAuthority.load(material);
    const c = await ca.issue({ kind: 'client', commonName: 'alg', days: 1 });
    const der = new X509Certificate(c.certPem).raw.toString('hex');
    assert.ok(der.includes('300a06082a8648ce3d040303'), 'ecdsa-with-SHA384 without parameters');
    assert.ok(!der.includes('06082a8648ce3d0403030500'), 'no NULL after the ECDSA OID');
  });

  it('400 bad input names the field and issues nothing', async () => {
    const ca = CertificateAuthority.load(material);
    const bad: [object, string][] = [
      [{ kind: 'client', commonName: 'Alice', days: 1 }, 'commonName'],
      [{ kind: 'client', commonName: '..', days: 1 }, 'commonName'],
      [{ kind: 'client', commonName: 'a b', days: 1 }, 'commonName'],
      [{ kind: 'client', commonName: 'ok', days: 0 }, 'days'],
      [{ kind: 'client', commonName: 'ok', days: 1.5 }, 'days'],
      [{ kind: 'admin', commonName: 'ok', days: 1 }, 'kind'],
      [{ kind: 'client', commonName: 'ok', days: 1, keyType: 'rsa-1024' }, 'keyType'],
      [{ kind: 'client', commonName: 'ok', days: 1, publicKeyPem: material.keyPem }, 'publicKeyPem'],
      [{ kind: 'client', commonName: 'ok', days: 1, publicKeyPem: 'junk' }, 'publicKeyPem'],
    ];
    for (const [req, field] of bad) {
      await assert.rejects(
        ca.issue(req as never),
        (e: unknown) => e instanceof BadRequest && e.field === field,
        JSON.stringify(req),
      );
    }
  });

  it('load: a key of another CA is rejected (AppError ca_key_mismatch)', async () => {
    const other = await createCa({ commonName: 'other', keyType: 'ec-p384', days: 1 });
    assert.throws(
      () => CertificateAuthority.load({ certPem: material.certPem, keyPem: other.keyPem }),
      (e: unknown) => e instanceof AppError && e.code === 'ca_key_mismatch',
    );
  });

  it('load: a leaf certificate is not a CA; garbage is unreadable', async () => {
    const ca = CertificateAuthority.load(material);
    const leaf = await ca.issue({ kind: 'client', commonName: 'leaf', days: 1 });
    assert.throws(
      () => CertificateAuthority.load({ certPem: leaf.certPem, keyPem: leaf.keyPem! }),
      (e: unknown) => e instanceof AppError && e.code === 'ca_invalid' && /not a CA/.test(e.message),
    );
    assert.throws(
      () => CertificateAuthority.load({ certPem: 'nope', keyPem: material.keyPem }),
      (e: unknown) => e instanceof AppError && e.code === 'ca_invalid',
    );
  });

  it('createCa: bad options are 400s naming the field', async () => {
    await assert.rejects(
      createCa({ commonName: '', keyType: 'ec-p384', days: 1 }),
      (e: unknown) => e instanceof BadRequest && e.field === 'ca.commonName',
    );
    await assert.rejects(
      createCa({ commonName: 'x', keyType: 'dsa' as never, days: 1 }),
      (e: unknown) => e instanceof BadRequest && e.field === 'ca.keyType',
    );
    await assert.rejects(
      createCa({ commonName: 'x', keyType: 'ec-p384', days: 0 }),
      (e: unknown) => e instanceof BadRequest && e.field === 'ca.days',
    );
  });

  it('409 an expired CA issues nothing', async () => {
    const ca = CertificateAuthority.load(material);
    await assert.rejects(
      ca.issue({ kind: 'client', commonName: 'late', days: 1, now: new Date(ca.notAfter.getTime() + 1000) }),
      (e: unknown) => e instanceof AppError && e.status === 409 && e.code === 'ca_expired',
    );
  });

  it('publicKeyMatches is false for another key and for junk', async () => {
    const ca = CertificateAuthority.load(material);
    const a = await ca.issue({ kind: 'client', commonName: 'a', days: 1 });
    const b = await ca.issue({ kind: 'client', commonName: 'b', days: 1 });
    assert.equal(publicKeyMatches(a.certPem, b.keyPem!), false);
    assert.equal(publicKeyMatches(a.certPem, 'junk'), false);
  });
});
