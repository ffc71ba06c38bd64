import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  randomBytes,
  scryptSync,
  type KeyObject,
} from 'node:crypto';
import { AppError, BadRequest, Unauthorized } from '../lib/errors.js';
import type { KeySecret } from './types.js';

/**
 * Private keys at rest: a JSON envelope holding the PKCS#8 DER encrypted with AES-256-GCM. The
 * encryption key is scrypt(passphrase, random salt) or a raw 32-byte KEK. The header (format, cipher,
 * KDF and its parameters) is authenticated as GCM additional data, so weakening the KDF in the file
 * makes decryption fail instead of making brute force cheaper.
 */

const FORMAT = 'podgate-key-envelope';
const CIPHER = 'aes-256-gcm';
/** scrypt cost: N=2^15, r=8 (~32 MiB, ~0.1 s): done once per start, so it can afford to be slow. */
const SCRYPT = { N: 32768, r: 8, p: 1 } as const;
/** Upper bounds for a file's scrypt cost (at most ~256 MiB, 8x the default): a crafted file cannot exhaust memory. */
const MAX_SCRYPT_N = 1 << 18;
export const WRONG_SECRET_MESSAGE = 'cannot decrypt the CA key: wrong passphrase or key file';

type Kdf = { name: 'scrypt'; salt: string; N: number; r: number; p: number } | { name: 'kek' };

interface Envelope {
  format: typeof FORMAT;
  version: 1;
  cipher: typeof CIPHER;
  kdf: Kdf;
  iv: string;
  tag: string;
  data: string;
}

/** Encrypts a private key (any PEM form Node reads) for storage; returns the JSON envelope text. */
export function encryptPrivateKey(keyPem: string, secret: KeySecret): string {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new BadRequest('keyPem is not a readable private key', 'keyPem', e);
  }
  return encryptSecret(key.export({ type: 'pkcs8', format: 'der' }), secret);
}

/**
 * Encrypts any secret bytes (e.g. a tls-crypt key) in the same envelope format as private keys.
 * The caller knows what the bytes are; {@link decryptSecret} returns them unchanged.
 */
export function encryptSecret(plaintext: Buffer, secret: KeySecret): string {
  const kdf: Kdf =
    'passphrase' in secret
      ? { name: 'scrypt', salt: randomBytes(16).toString('base64'), ...SCRYPT }
      : { name: 'kek' };
  const header = { format: FORMAT, version: 1, cipher: CIPHER, kdf } as const;
  const iv = randomBytes(12);
  const cipher = createCipheriv(CIPHER, deriveKey(kdf, secret), iv);
  cipher.setAAD(aad(header));
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const envelope: Envelope = {
    ...header,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
  return `${JSON.stringify(envelope, null, 2)}\n`;
}

/**
 * Decrypts an envelope made by {@link encryptPrivateKey}; returns PKCS#8 PEM. A wrong passphrase or KEK
 * (or a file altered in any way) throws 401 "cannot decrypt the CA key: wrong passphrase or key file";
 * text that is not an envelope throws 400. Nothing else happens on failure.
 */
export function decryptPrivateKey(envelope: string, secret: KeySecret): string {
  const der = decryptSecret(envelope, secret);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
  } catch {
    throw new Unauthorized(WRONG_SECRET_MESSAGE);
  }
}

/** Decrypts an envelope made by {@link encryptSecret} (or a key envelope, giving its PKCS#8 DER). */
export function decryptSecret(envelope: string, secret: KeySecret): Buffer {
  const e = parseEnvelope(envelope);
  if ((e.kdf.name === 'kek') !== 'kek' in secret) {
    const wants = e.kdf.name === 'kek' ? 'a key-encryption key' : 'a passphrase';
    throw new Unauthorized(`${WRONG_SECRET_MESSAGE} (this key file needs ${wants})`);
  }
  try {
    const decipher = createDecipheriv(CIPHER, deriveKey(e.kdf, secret), Buffer.from(e.iv, 'base64'));
    decipher.setAAD(aad({ format: e.format, version: e.version, cipher: e.cipher, kdf: e.kdf }));
    decipher.setAuthTag(Buffer.from(e.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(e.data, 'base64')), decipher.final()]);
  } catch (err) {
    // GCM says only "unable to authenticate data": a wrong secret and an altered file look the same.
    if (err instanceof AppError) throw err;
    throw new Unauthorized(WRONG_SECRET_MESSAGE);
  }
}

function deriveKey(kdf: Kdf, secret: KeySecret): Buffer {
  if ('kek' in secret) {
    if (!Buffer.isBuffer(secret.kek) || secret.kek.length !== 32)
      throw new BadRequest('kek must be exactly 32 bytes', 'kek');
    return secret.kek;
  }
  if (typeof secret.passphrase !== 'string' || secret.passphrase.length === 0) {
    throw new BadRequest('passphrase must not be empty', 'passphrase');
  }
  if (kdf.name !== 'scrypt') throw new Unauthorized(WRONG_SECRET_MESSAGE);
  const { N, r, p } = kdf;
  return scryptSync(secret.passphrase.normalize('NFC'), Buffer.from(kdf.salt, 'base64'), 32, {
    N,
    r,
    p,
    maxmem: 256 * N * r + (1 << 20),
  });
}

function aad(header: Omit<Envelope, 'iv' | 'tag' | 'data'>): Buffer {
  // Fixed key order, so the same header always gives the same bytes.
  const kdf =
    header.kdf.name === 'scrypt'
      ? { name: 'scrypt', salt: header.kdf.salt, N: header.kdf.N, r: header.kdf.r, p: header.kdf.p }
      : { name: 'kek' };
  return Buffer.from(
    JSON.stringify({ format: header.format, version: header.version, cipher: header.cipher, kdf }),
    'utf8',
  );
}

function parseEnvelope(text: string): Envelope {
  const bad = () => new BadRequest('the CA key file is not a podgate key envelope', 'caKey');
  let e: Envelope;
  try {
    e = JSON.parse(text) as Envelope;
  } catch {
    throw bad();
  }
  const b64 = (v: unknown) => typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v);
  if (
    !e ||
    e.format !== FORMAT ||
    e.version !== 1 ||
    e.cipher !== CIPHER ||
    !b64(e.iv) ||
    !b64(e.tag) ||
    !b64(e.data)
  )
    throw bad();
  const k = e.kdf as Partial<Record<string, unknown>> | undefined;
  if (k?.name === 'kek') return { ...e, kdf: { name: 'kek' } };
  const okScrypt =
    k?.name === 'scrypt' &&
    b64(k.salt) &&
    [k.N, k.r, k.p].every((v) => Number.isSafeInteger(v) && (v as number) > 0) &&
    (k.N as number) <= MAX_SCRYPT_N &&
    ((k.N as number) & ((k.N as number) - 1)) === 0 &&
    (k.r as number) <= 8 &&
    (k.p as number) <= 4;
  if (!okScrypt) throw bad();
  return e;
}
