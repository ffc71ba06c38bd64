import { createPublicKey, X509Certificate } from 'node:crypto';
import { BadRequest } from '../lib/errors.js';
import { oidToString } from './algorithms.js';
import {
  childrenOf,
  commonNameOf,
  contentOf,
  expectTag,
  fromPem,
  integerContentToSerialHex,
  parseTime,
  rawOf,
  readRoot,
  TAG,
  toPem,
  type Tlv,
} from './der.js';
import { keyTypeOf, subjectKeyIdentifier } from './keys.js';

/** The parts of a certificate podgate needs, read straight from its DER. */
export interface ParsedCertificate {
  /** Normalised PEM (one block, 64-character lines). */
  pem: string;
  serial: string;
  /** Exact DER of the subject Name: a CRL's issuer must equal it byte for byte. */
  subjectDer: Buffer;
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  spkiDer: Buffer;
  /** The SubjectKeyIdentifier extension, or the RFC 5280 method-1 hash when the extension is absent. */
  ski: Buffer;
}

const SKI_OID = '2.5.29.14';

/** Parses a PEM "CERTIFICATE"; throws (DerError or Error) when it is not one. */
export function readCertificate(certPem: string): ParsedCertificate {
  const der = fromPem(certPem, ['CERTIFICATE']);
  const [tbs] = childrenOf(expectTag(readRoot(der), TAG.SEQUENCE, 'Certificate'));
  const f = childrenOf(expectTag(tbs, TAG.SEQUENCE, 'TBSCertificate'));
  const i = f[0]?.tag === TAG.CONTEXT_0 ? 1 : 0; // explicit version present (v2/v3)
  const serial = expectTag(f[i], TAG.INTEGER, 'serialNumber');
  const validity = childrenOf(expectTag(f[i + 3], TAG.SEQUENCE, 'validity'));
  const subject = expectTag(f[i + 4], TAG.SEQUENCE, 'subject');
  const spkiDer = rawOf(expectTag(f[i + 5], TAG.SEQUENCE, 'subjectPublicKeyInfo'));
  const exts = f.find((t) => t.tag === TAG.CONTEXT_3);
  return {
    pem: toPem('CERTIFICATE', der),
    serial: integerContentToSerialHex(contentOf(serial)),
    subjectDer: Buffer.from(rawOf(subject)),
    commonName: commonNameOf(subject) ?? '',
    notBefore: parseTime(validity[0]!),
    notAfter: parseTime(validity[1]!),
    spkiDer: Buffer.from(spkiDer),
    ski: (exts && findSki(exts)) ?? subjectKeyIdentifier(spkiDer),
  };
}

function findSki(exts: Tlv): Buffer | undefined {
  for (const ext of childrenOf(expectTag(childrenOf(exts)[0], TAG.SEQUENCE, 'extensions'))) {
    const parts = childrenOf(ext);
    if (oidToString(contentOf(parts[0]!)) !== SKI_OID) continue;
    const value = parts[parts.length - 1]!;
    const inner = readRoot(contentOf(value));
    return Buffer.from(contentOf(expectTag(inner, TAG.OCTET_STRING, 'subjectKeyIdentifier')));
  }
  return undefined;
}

/**
 * Facts about a certificate for listings and the store. `fingerprintSha256` is colon-separated upper-case
 * hex, as `openssl x509 -fingerprint -sha256` prints it. Throws BadRequest('certPem ...') when unreadable.
 */
export function certificateInfo(certPem: string): {
  serial: string;
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  keyType: string;
  fingerprintSha256: string;
} {
  try {
    const p = readCertificate(certPem);
    const x509 = new X509Certificate(p.pem);
    const key = createPublicKey({ key: p.spkiDer, format: 'der', type: 'spki' });
    return {
      serial: p.serial,
      commonName: p.commonName,
      notBefore: p.notBefore,
      notAfter: p.notAfter,
      keyType: keyTypeOf(key) ?? key.asymmetricKeyType ?? 'unknown',
      fingerprintSha256: x509.fingerprint256,
    };
  } catch (e) {
    throw new BadRequest('certPem is not a readable PEM certificate', 'certPem', e);
  }
}
