import { sign, verify, type KeyObject } from 'node:crypto';
import { BadRequest } from '../lib/errors.js';
import { contentOf, childrenOf, expectTag, TAG, type Tlv } from './der.js';

/**
 * Signature algorithms, always computed by Node's native crypto (forge signs in pure JS, ~100x slower).
 * AlgorithmIdentifiers are written by hand because forge adds a NULL parameter to ECDSA ones, which
 * RFC 5758 forbids.
 */

type Hash = 'sha256' | 'sha384' | 'sha512';
type KeyKind = 'rsa' | 'ec';

interface SigAlg {
  readonly oid: string;
  readonly hash: Hash;
  readonly keyKind: KeyKind;
  /** Full DER of the AlgorithmIdentifier SEQUENCE. */
  readonly der: Buffer;
}

const RSA_NULL = '0500';
const ALGS: readonly SigAlg[] = [
  {
    oid: '1.2.840.113549.1.1.11',
    hash: 'sha256',
    keyKind: 'rsa',
    der: hex('300d06092a864886f70d01010b' + RSA_NULL),
  },
  {
    oid: '1.2.840.113549.1.1.12',
    hash: 'sha384',
    keyKind: 'rsa',
    der: hex('300d06092a864886f70d01010c' + RSA_NULL),
  },
  {
    oid: '1.2.840.113549.1.1.13',
    hash: 'sha512',
    keyKind: 'rsa',
    der: hex('300d06092a864886f70d01010d' + RSA_NULL),
  },
  { oid: '1.2.840.10045.4.3.2', hash: 'sha256', keyKind: 'ec', der: hex('300a06082a8648ce3d040302') },
  { oid: '1.2.840.10045.4.3.3', hash: 'sha384', keyKind: 'ec', der: hex('300a06082a8648ce3d040303') },
  { oid: '1.2.840.10045.4.3.4', hash: 'sha512', keyKind: 'ec', der: hex('300a06082a8648ce3d040304') },
];

function hex(s: string): Buffer {
  return Buffer.from(s, 'hex');
}

/** Signs with a CA key and says which AlgorithmIdentifier to write next to the signature. */
export interface Signer {
  readonly algorithm: SigAlg;
  sign(data: Buffer): Buffer;
}

/**
 * The signer for a CA private key: RSA keys sign sha256WithRSAEncryption; EC keys sign ECDSA with the
 * hash that matches the curve (P-256 sha256, P-384 sha384, P-521 sha512).
 */
export function signerFor(key: KeyObject): Signer {
  const hash = caHash(key);
  const kind: KeyKind = key.asymmetricKeyType === 'rsa' ? 'rsa' : 'ec';
  const algorithm = ALGS.find((a) => a.hash === hash && a.keyKind === kind)!;
  return { algorithm, sign: (data) => sign(hash, data, key) };
}

function caHash(key: KeyObject): Hash {
  if (key.asymmetricKeyType === 'rsa') return 'sha256';
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'sha256';
    if (curve === 'secp384r1') return 'sha384';
    if (curve === 'secp521r1') return 'sha512';
  }
  throw new BadRequest('CA key: only RSA and EC (P-256, P-384, P-521) keys can sign', 'caKey');
}

/** Looks up a signature AlgorithmIdentifier; undefined for algorithms podgate does not accept. */
export function sigAlgOf(algId: Tlv): SigAlg | undefined {
  const [oid, params] = childrenOf(expectTag(algId, TAG.SEQUENCE, 'AlgorithmIdentifier'));
  if (!oid || oid.tag !== TAG.OID) return undefined;
  const dotted = oidToString(contentOf(oid));
  const alg = ALGS.find((a) => a.oid === dotted);
  if (!alg) return undefined;
  // RSA identifiers carry NULL (or, rarely, nothing); ECDSA ones must carry nothing.
  if (params && !(alg.keyKind === 'rsa' && params.tag === TAG.NULL)) return undefined;
  return alg;
}

/** Verifies `signature` over `data` made with `alg` by `publicKey`; false on any mismatch. */
export function verifySignature(alg: SigAlg, data: Buffer, publicKey: KeyObject, signature: Buffer): boolean {
  if (publicKey.asymmetricKeyType !== alg.keyKind) return false;
  try {
    return verify(alg.hash, data, publicKey, signature);
  } catch {
    return false;
  }
}

/** Dotted form of OID content octets. */
export function oidToString(c: Buffer): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < c.length; i++) {
    v = v * 128 + (c[i]! & 0x7f);
    if (!(c[i]! & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const a = first < 40 ? 0 : first < 80 ? 1 : 2;
  return [a, first - a * 40, ...parts].join('.');
}
