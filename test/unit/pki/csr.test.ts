import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BadRequest } from '../../../src/lib/errors.js';
import {
  CertificateAuthority,
  createCa,
  parseCsr,
  publicKeyMatches,
  type CaMaterial,
} from '../../../src/pki/index.js';
import { OpensslWorkspace } from './openssl.js';

/** Re-frames DER as PEM with another label text, for tampering tests. */
function pem(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END ${label}-----\n`;
}

function derOf(p: string): Buffer {
  return Buffer.from(p.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
}

function isCsrError(pattern: RegExp) {
  return (e: unknown) => e instanceof BadRequest && e.field === 'csr' && pattern.test(e.message);
}

describe('pki CSR: requests made by openssl req', function () {
  this.timeout(60_000);
  const ws = new OpensslWorkspace();
  let material: CaMaterial;
  let ca: CertificateAuthority;
  after(() => ws.cleanup());
  before(async () => {
    material = await createCa({ commonName: 'podgate CA', keyType: 'rsa-3072', days: 365 });
    ca = CertificateAuthority.load(material);
    ws.file('ca.pem', material.certPem);
  });

  const kinds: { name: string; newkey: string[] }[] = [
    { name: 'EC P-256', newkey: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] },
    { name: 'RSA-2048', newkey: ['-newkey', 'rsa:2048'] },
  ];
  for (const k of kinds) {
    it(`${k.name}: parseCsr -> issue with publicKeyPem -> openssl verify OK, device key matches`, async () => {
      const base = k.name.replace(/\W/g, '');
      await ws.ok([
        'req',
        '-new',
        ...k.newkey,
        '-nodes',
        '-keyout',
        `${base}.key`,
        '-subj',
        '/CN=bob-phone',
        '-out',
        `${base}.csr`,
      ]);
      const csr = parseCsr(readFileSync(ws.path(`${base}.csr`), 'utf8'));
      assert.equal(csr.commonName, 'bob-phone');
      assert.equal(csr.publicKeyPem, await ws.ok(['req', '-in', `${base}.csr`, '-noout', '-pubkey']));

      const c = await ca.issue({
        kind: 'client',
        commonName: 'bob-phone',
        days: 90,
        publicKeyPem: csr.publicKeyPem,
      });
      assert.equal(c.keyPem, undefined, 'no key is generated for a CSR');
      assert.equal(c.keyType, k.name === 'EC P-256' ? 'ec-p256' : 'rsa-2048');
      ws.file(`${base}.pem`, c.certPem);
      assert.match(
        await ws.ok(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', 'ca.pem', `${base}.pem`]),
        /: OK/,
      );
      assert.ok(publicKeyMatches(c.certPem, readFileSync(ws.path(`${base}.key`), 'utf8')));
    });
  }

  it('a request without a subject gives no commonName', async () => {
    await ws.ok([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'nosub.key',
      '-subj',
      '/O=acme',
      '-out',
      'nosub.csr',
    ]);
    const csr = parseCsr(readFileSync(ws.path('nosub.csr'), 'utf8'));
    assert.equal(csr.commonName, undefined);
  });

  it('400 a tampered request (subject changed after signing); openssl agrees it is bad', async () => {
    await ws.ok([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      't.key',
      '-subj',
      '/CN=mallory',
      '-out',
      't.csr',
    ]);
    const der = derOf(readFileSync(ws.path('t.csr'), 'utf8'));
    const at = der.indexOf(Buffer.from('mallory'));
    assert.ok(at > 0);
    der.write('admin!!', at, 'latin1');
    const tampered = pem('CERTIFICATE REQUEST', der);
    assert.throws(() => parseCsr(tampered), isCsrError(/signature does not match/));
    ws.file('tampered.csr', tampered);
    // openssl 3.0 reports the failure but exits 0.
    const r = await ws.run(['req', '-in', 'tampered.csr', '-verify', '-noout']);
    assert.match(r.stdout + r.stderr, /self-signature verify failure/);
  });

  it('400 a request whose key was swapped for another key', async () => {
    await ws.ok([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      's1.key',
      '-subj',
      '/CN=one',
      '-out',
      's1.csr',
    ]);
    await ws.ok([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      's2.key',
      '-subj',
      '/CN=one',
      '-out',
      's2.csr',
    ]);
    const one = derOf(readFileSync(ws.path('s1.csr'), 'utf8'));
    const two = derOf(readFileSync(ws.path('s2.csr'), 'utf8'));
    const spki = (d: Buffer) =>
      d.subarray(d.indexOf(Buffer.from('3059301306072a8648ce3d0201', 'hex')), undefined);
    const key2 = spki(two).subarray(0, 91);
    const swapped = Buffer.from(one);
    key2.copy(swapped, one.indexOf(Buffer.from('3059301306072a8648ce3d0201', 'hex')));
    assert.throws(
      () => parseCsr(pem('CERTIFICATE REQUEST', swapped)),
      isCsrError(/signature does not match/),
    );
  });

  it('400 unsupported keys and algorithms: Ed25519, EC P-521, RSA-1024', async () => {
    const cases: [string, string[]][] = [
      ['ed', ['-newkey', 'ed25519']],
      ['p521', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']],
      ['rsa1024', ['-newkey', 'rsa:1024']],
    ];
    for (const [name, newkey] of cases) {
      await ws.ok([
        'req',
        '-new',
        ...newkey,
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-subj',
        '/CN=x',
        '-out',
        `${name}.csr`,
      ]);
      assert.throws(
        () => parseCsr(readFileSync(ws.path(`${name}.csr`), 'utf8')),
        isCsrError(/unsupported/),
        name,
      );
    }
  });

  it('400 an RSA key with public exponent 3 (openssl signs it fine); 65537 still accepted', async () => {
    for (const [name, exp] of [
      ['e3', '3'],
      ['e65537', '65537'],
    ] as const) {
      await ws.ok([
        'req',
        '-new',
        '-newkey',
        'rsa:2048',
        '-pkeyopt',
        `rsa_keygen_pubexp:${exp}`,
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-subj',
        '/CN=x',
        '-out',
        `${name}.csr`,
      ]);
    }
    assert.match(await ws.ok(['req', '-in', 'e3.csr', '-noout', '-text']), /Exponent: 3 /);
    assert.throws(() => parseCsr(readFileSync(ws.path('e3.csr'), 'utf8')), isCsrError(/exponent 65537/));
    assert.ok(parseCsr(readFileSync(ws.path('e65537.csr'), 'utf8')).publicKeyPem);
  });

  it('400 two concatenated requests, whichever order; each alone is accepted', async () => {
    for (const name of ['one', 'two']) {
      await ws.ok(
        ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
          '-keyout',
          `${name}.key`,
          '-subj',
          `/CN=${name}`,
          '-out',
          `${name}.csr`,
        ]),
      );
    }
    const one = readFileSync(ws.path('one.csr'), 'utf8');
    const two = readFileSync(ws.path('two.csr'), 'utf8');
    assert.equal(parseCsr(one).commonName, 'one');
    assert.equal(parseCsr(two).commonName, 'two');
    assert.throws(() => parseCsr(one + two), isCsrError(/more than one PEM block/));
    assert.throws(() => parseCsr(two + '\n' + one), isCsrError(/more than one PEM block/));
  });

  it('400 text that is not a request: garbage, a certificate, truncated DER', () => {
    assert.throws(() => parseCsr('hello'), isCsrError(/not a valid PKCS#10/));
    assert.throws(() => parseCsr(material.certPem), isCsrError(/not a valid PKCS#10/));
    assert.throws(
      () => parseCsr(pem('CERTIFICATE REQUEST', Buffer.from('3082010a0201', 'hex'))),
      isCsrError(/not a valid PKCS#10/),
    );
    assert.throws(
      () => parseCsr(42 as never),
      (e: unknown) => e instanceof BadRequest && e.field === 'csr',
    );
  });
});
