import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { BadRequest } from '../lib/errors.js';
import { childrenOf, contentOf, expectTag, readRoot, TAG } from './der.js';
import type { CaKeyType, ClientKeyType } from './types.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A freshly generated key: SPKI DER for the certificate, PKCS#8 PEM for the holder. */
export interface GeneratedKey {
  spkiDer: Buffer;
  keyPem: string;
}

const PARAMS: Record<
  ClientKeyType | CaKeyType,
  { type: 'rsa'; modulusLength: number } | { type: 'ec'; namedCurve: string }
> = {
  'ec-p256': { type: 'ec', namedCurve: 'prime256v1' },
  'ec-p384': { type: 'ec', namedCurve: 'secp384r1' },
  'rsa-2048': { type: 'rsa', modulusLength: 2048 },
  'rsa-3072': { type: 'rsa', modulusLength: 3072 },
};

export const CLIENT_KEY_TYPES: readonly ClientKeyType[] = ['ec-p256', 'rsa-2048', 'rsa-3072'];
export const CA_KEY_TYPES: readonly CaKeyType[] = ['rsa-3072', 'ec-p384'];

/**
 * Generates a key with Node's async native keygen (runs on the libuv pool, so several keys are made in
 * parallel and the event loop stays free). Both encodings are produced by the same native call.
 */
export async function generateKey(keyType: ClientKeyType | CaKeyType): Promise<GeneratedKey> {
  const p = PARAMS[keyType];
  const publicKeyEncoding = { type: 'spki', format: 'der' } as const;
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const;
  const pair =
    p.type === 'rsa'
      ? await generateKeyPairAsync('rsa', {
          modulusLength: p.modulusLength,
          publicExponent: 0x10001,
          publicKeyEncoding,
          privateKeyEncoding,
        })
      : await generateKeyPairAsync('ec', { namedCurve: p.namedCurve, publicKeyEncoding, privateKeyEncoding });
  return { spkiDer: pair.publicKey, keyPem: pair.privateKey };
}

/**
 * Small RSA exponents (3, 17) make textbook-RSA mistakes exploitable (Coppersmith, Bleichenbacher's
 * e=3 signature forgery); like NIST SP 800-89 we want an odd e of at least 65537.
 */
function acceptableRsaExponent(e: bigint | undefined): boolean {
  return e !== undefined && e >= 65537n && e % 2n === 1n;
}

/**
 * podgate's name for a key ("ec-p256", "rsa-2048", ...), or undefined for keys it does not certify:
 * RSA below 2048 or above 8192 bits or with a public exponent below 65537, EC curves other than P-256/P-384, and every other algorithm.
 */
export function keyTypeOf(key: KeyObject): string | undefined {
  const d = key.asymmetricKeyDetails;
  if (
    key.asymmetricKeyType === 'rsa' &&
    d?.modulusLength &&
    d.modulusLength >= 2048 &&
    d.modulusLength <= 8192 &&
    acceptableRsaExponent(d.publicExponent)
  ) {
    return `rsa-${d.modulusLength}`;
  }
  if (key.asymmetricKeyType === 'ec') {
    if (d?.namedCurve === 'prime256v1') return 'ec-p256';
    if (d?.namedCurve === 'secp384r1') return 'ec-p384';
  }
  return undefined;
}

/** Reads a public key that is to be certified; BadRequest naming `field` when unusable. */
export function acceptPublicKey(pem: string, field: string): { spkiDer: Buffer; keyType: string } {
  // createPublicKey also derives a public key from a private one: insist on a public key block.
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN PUBLIC KEY-----')) {
    throw new BadRequest(`${field} must be a PEM "PUBLIC KEY" (SubjectPublicKeyInfo)`, field);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw new BadRequest(`${field} is not a readable public key`, field, e);
  }
  const keyType = keyTypeOf(key);
  if (!keyType)
    throw new BadRequest(`${field}: unsupported key (use RSA 2048-8192 bits, EC P-256 or EC P-384)`, field);
  return { spkiDer: key.export({ type: 'spki', format: 'der' }), keyType };
}

/**
 * Subject key identifier, RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING value
 * (what OpenSSL writes for `subjectKeyIdentifier=hash`).
 */
export function subjectKeyIdentifier(spkiDer: Buffer): Buffer {
  const [, bits] = childrenOf(expectTag(readRoot(spkiDer), TAG.SEQUENCE, 'SubjectPublicKeyInfo'));
  const value = contentOf(expectTag(bits, TAG.BIT_STRING, 'subjectPublicKey')).subarray(1);
  return createHash('sha1').update(value).digest();
}

/** True when `keyPem` is the private key of the certificate's public key. Never throws. */
export function publicKeyMatches(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
