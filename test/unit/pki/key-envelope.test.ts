import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { AppError, BadRequest } from '../../../src/lib/errors.js';
import {
  CertificateAuthority,
  createCa,
  decryptPrivateKey,
  encryptPrivateKey,
  WRONG_SECRET_MESSAGE,
  type CaMaterial,
} from '../../../src/pki/index.js';
import { OpensslWorkspace } from './openssl.js';

function isWrongSecret(e: unknown): boolean {
  return e instanceof AppError && e.status === 401 && e.message.startsWith(WRONG_SECRET_MESSAGE);
}

describe('pki key envelope (CA key at rest)', function () {
  this.timeout(60_000);
  const ws = new OpensslWorkspace();
  let material: CaMaterial;
  let der: Buffer;
  after(() => ws.cleanup());
  before(async () => {
    material = await createCa({ commonName: 'podgate CA', keyType: 'rsa-3072', days: 30 });
    der = createPrivateKey(material.keyPem).export({ type: 'pkcs8', format: 'der' });
  });

  it('passphrase round trip: the decrypted key loads the CA and openssl reads it', async () => {
    const envelope = encryptPrivateKey(material.keyPem, { passphrase: 'correct horse battery staple' });
    const keyPem = decryptPrivateKey(envelope, { passphrase: 'correct horse battery staple' });
    assert.ok(createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' }).equals(der));
    CertificateAuthority.load({ certPem: material.certPem, keyPem });
    ws.file('k.pem', keyPem);
    assert.match(await ws.ok(['pkey', '-in', 'k.pem', '-noout', '-text']), /Private-Key: \(3072 bit/);
  });

  it('KEK round trip', () => {
    const kek = randomBytes(32);
    const envelope = encryptPrivateKey(material.keyPem, { kek });
    const keyPem = decryptPrivateKey(envelope, { kek: Buffer.from(kek) });
    assert.ok(createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' }).equals(der));
  });

  it('the envelope holds no plaintext key: no PEM, no DER (raw, base64 or hex), and differs every time', () => {
    const a = encryptPrivateKey(material.keyPem, { passphrase: 'pw' });
    const b = encryptPrivateKey(material.keyPem, { passphrase: 'pw' });
    assert.notEqual(a, b, 'fresh salt and IV each time');
    for (const env of [a, b, encryptPrivateKey(material.keyPem, { kek: randomBytes(32) })]) {
      assert.doesNotMatch(env, /PRIVATE KEY|BEGIN/);
      const parsed = JSON.parse(env) as { data: string };
      const ct = Buffer.from(parsed.data, 'base64');
      // Any 16-byte window of the key must not appear in the stored bytes in any encoding.
      for (let off = 0; off + 16 <= der.length; off += 97) {
        const window = der.subarray(off, off + 16);
        assert.ok(!ct.includes(window), `raw DER window at ${off}`);
        assert.ok(!Buffer.from(env).includes(window), `raw DER window at ${off} in text`);
        assert.ok(!env.includes(window.toString('hex')), `hex window at ${off}`);
      }
      const pemBody = material.keyPem.split('\n')[5]!; // a base64 line from the middle of the PEM
      assert.ok(!env.includes(pemBody));
      assert.ok(!env.includes(der.toString('base64').slice(200, 264)));
    }
  });

  it('401 wrong passphrase, wrong KEK, or the wrong kind of secret: the clear message, nothing else', () => {
    const withPass = encryptPrivateKey(material.keyPem, { passphrase: 'right' });
    const withKek = encryptPrivateKey(material.keyPem, { kek: randomBytes(32) });
    assert.throws(
      () => decryptPrivateKey(withPass, { passphrase: 'wrong' }),
      (e: unknown) => isWrongSecret(e) && (e as Error).message === WRONG_SECRET_MESSAGE,
    );
    assert.throws(() => decryptPrivateKey(withKek, { kek: randomBytes(32) }), isWrongSecret);
    assert.throws(() => decryptPrivateKey(withPass, { kek: randomBytes(32) }), isWrongSecret);
    assert.throws(() => decryptPrivateKey(withKek, { passphrase: 'right' }), isWrongSecret);
    assert.equal(WRONG_SECRET_MESSAGE, 'cannot decrypt the CA key: wrong passphrase or key file');
  });

  it('401 an altered file: ciphertext, tag, or a weakened scrypt cost (the header is authenticated)', () => {
    const env = JSON.parse(encryptPrivateKey(material.keyPem, { passphrase: 'pw' })) as Record<
      string,
      unknown
    > & {
      kdf: { N: number };
      data: string;
    };
    const flip = (b64: string) => {
      const b = Buffer.from(b64, 'base64');
      b[5]! ^= 1;
      return b.toString('base64');
    };
    assert.throws(
      () => decryptPrivateKey(JSON.stringify({ ...env, data: flip(env.data) }), { passphrase: 'pw' }),
      isWrongSecret,
    );
    assert.throws(
      () => decryptPrivateKey(JSON.stringify({ ...env, tag: flip(env.tag as string) }), { passphrase: 'pw' }),
      isWrongSecret,
    );
    assert.throws(
      () => decryptPrivateKey(JSON.stringify({ ...env, kdf: { ...env.kdf, N: 1024 } }), { passphrase: 'pw' }),
      isWrongSecret,
    );
  });

  it('400 not an envelope, or an unusable secret', () => {
    for (const text of [
      '',
      'not json',
      '{}',
      material.keyPem,
      JSON.stringify({ format: 'podgate-key-envelope', version: 2 }),
    ]) {
      assert.throws(
        () => decryptPrivateKey(text, { passphrase: 'pw' }),
        (e: unknown) => e instanceof BadRequest,
      );
    }
    const env = encryptPrivateKey(material.keyPem, { passphrase: 'pw' });
    const huge = JSON.stringify({ ...JSON.parse(env), kdf: { ...JSON.parse(env).kdf, N: 2 ** 24 } });
    assert.throws(
      () => decryptPrivateKey(huge, { passphrase: 'pw' }),
      (e: unknown) => e instanceof BadRequest,
    );
    assert.throws(
      () => encryptPrivateKey(material.keyPem, { kek: randomBytes(16) }),
      (e: unknown) => e instanceof BadRequest && e.field === 'kek',
    );
    assert.throws(
      () => encryptPrivateKey(material.keyPem, { passphrase: '' }),
      (e: unknown) => e instanceof BadRequest && e.field === 'passphrase',
    );
    assert.throws(
      () => encryptPrivateKey('junk', { passphrase: 'pw' }),
      (e: unknown) => e instanceof BadRequest && e.field === 'keyPem',
    );
  });
});
