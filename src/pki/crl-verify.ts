import { createPublicKey } from 'node:crypto';
import { AppError } from '../lib/errors.js';
import { oidToString, sigAlgOf, verifySignature } from './algorithms.js';
import { readCertificate, type ParsedCertificate } from './cert-info.js';
import {
  childrenOf,
  contentOf,
  DerError,
  expectTag,
  fromPem,
  integerContentToSerialHex,
  parseTime,
  rawOf,
  readRoot,
  TAG,
  type Tlv,
} from './der.js';
import type { CrlInfo } from './types.js';

const OID_CRL_NUMBER = '2.5.29.20';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';
/** CRL extensions podgate understands; an unknown critical one makes the CRL unusable (as in OpenSSL). */
const KNOWN_EXTENSIONS = new Set([OID_CRL_NUMBER, OID_AUTHORITY_KEY_ID]);

function reject(reason: string, cause?: unknown): AppError {
  return new AppError(400, 'crl_invalid', `crl: ${reason}`, { field: 'crl', cause });
}

/** Splits concatenated PEM text into its blocks of one label (other blocks are ignored). */
function pemBlocks(pem: string, label: string): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, 'g');
  return pem.match(re) ?? [];
}

/**
 * Checks a CRL the way OpenVPN will use it, so that a bad one is never published: issuer equal to the CA
 * subject (byte for byte), signature by the CA key, thisUpdate not in the future, nextUpdate present and
 * in the future. Returns its number and revoked serials (upper-case hex, as openssl prints them).
 * Throws AppError 400 "crl: <reason>" otherwise.
 *
 * During a CA rotation `caCertPem` holds both CAs and `crlPem` one CRL per CA (openvpn loads every CRL
 * of its crl-verify file): each CRL is checked against its own issuer, every CA must have exactly one,
 * and all must carry the same CRL number (podgate signs them together). Serials are the union.
 */
export function verifyCrl(crlPem: string, caCertPem: string, now: Date = new Date()): CrlInfo {
  const caPems = pemBlocks(caCertPem, 'CERTIFICATE');
  const crlPems = pemBlocks(crlPem, 'X509 CRL');
  if (caPems.length <= 1 && crlPems.length <= 1) return verifyOne(crlPem, readCa(caCertPem), now);
  const cas = caPems.map(readCa);
  const infos = cas.map((ca, i) => {
    const mine = crlPems.filter((p) => crlIssuerDer(p)?.equals(ca.subjectDer));
    if (mine.length !== 1)
      throw reject(`expected one CRL for CA #${i + 1} (${ca.commonName}), found ${mine.length}`);
    return verifyOne(mine[0]!, ca, now);
  });
  if (crlPems.length !== cas.length) throw reject('a CRL in the file is from none of the trusted CAs');
  if (new Set(infos.map((x) => x.number)).size !== 1) throw reject('the CRLs carry different CRL numbers');
  return {
    number: infos[0]!.number,
    thisUpdate: new Date(Math.max(...infos.map((x) => x.thisUpdate.getTime()))),
    nextUpdate: new Date(Math.min(...infos.map((x) => x.nextUpdate.getTime()))),
    revokedSerials: infos.flatMap((x) => x.revokedSerials),
  };
}

function readCa(pem: string): ParsedCertificate {
  try {
    return readCertificate(pem);
  } catch (e) {
    throw new AppError(400, 'ca_invalid', 'the CA certificate cannot be read', {
      field: 'caCertPem',
      cause: e,
    });
  }
}

/**
 * Who signed each CRL in a PEM text (issuer name and authority key id, hex; unreadable blocks left out):
 * tells whether two CRL files come from the same CA (set) before their CRL numbers are compared. The key
 * id matters: two CAs made by separate `podgate init`s have the same name ("podgate CA").
 */
export function crlIssuers(crlPem: string): string[] {
  return pemBlocks(crlPem, 'X509 CRL').flatMap((p) => {
    try {
      const c = parseCrl(fromPem(p, ['X509 CRL']));
      return [`${c.issuerDer.toString('hex')}/${c.authorityKeyId?.toString('hex') ?? ''}`];
    } catch {
      return [];
    }
  });
}

function crlIssuerDer(pem: string): Buffer | undefined {
  try {
    return parseCrl(fromPem(pem, ['X509 CRL'])).issuerDer;
  } catch {
    return undefined;
  }
}

function verifyOne(crlPem: string, ca: ParsedCertificate, now: Date): CrlInfo {
  let parsed: ParsedCrl;
  try {
    parsed = parseCrl(fromPem(crlPem, ['X509 CRL']));
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw reject(
      e instanceof DerError ? `not a readable X509 CRL (${e.message})` : 'not a readable X509 CRL',
      e,
    );
  }
  if (!parsed.issuerDer.equals(ca.subjectDer))
    throw reject('issuer is not this CA (OpenVPN would silently ignore it)');
  const caKey = createPublicKey({ key: ca.spkiDer, format: 'der', type: 'spki' });
  if (!verifySignature(parsed.alg, parsed.tbsDer, caKey, parsed.signature))
    throw reject('signature does not verify with the CA key');
  if (parsed.thisUpdate.getTime() > now.getTime())
    throw reject(`thisUpdate ${parsed.thisUpdate.toISOString()} is in the future`);
  if (!parsed.nextUpdate) throw reject('nextUpdate is missing');
  if (parsed.nextUpdate.getTime() <= now.getTime())
    throw reject(`expired: nextUpdate ${parsed.nextUpdate.toISOString()} has passed`);
  if (parsed.number === undefined) throw reject('CRL number extension is missing');
  return {
    number: parsed.number,
    thisUpdate: parsed.thisUpdate,
    nextUpdate: parsed.nextUpdate,
    revokedSerials: parsed.serials,
  };
}

interface ParsedCrl {
  tbsDer: Buffer;
  alg: NonNullable<ReturnType<typeof sigAlgOf>>;
  signature: Buffer;
  issuerDer: Buffer;
  thisUpdate: Date;
  nextUpdate?: Date;
  serials: string[];
  number?: number;
  /** The authorityKeyIdentifier extension's value (DER), when present: which CA key signed it. */
  authorityKeyId?: Buffer;
}

function parseCrl(der: Buffer): ParsedCrl {
  const [tbs, outerAlg, sigBits, extra] = childrenOf(
    expectTag(readRoot(der), TAG.SEQUENCE, 'CertificateList'),
  );
  if (extra) throw new DerError('CertificateList: unexpected structure');
  const f = childrenOf(expectTag(tbs, TAG.SEQUENCE, 'TBSCertList'));
  let i = 0;
  if (f[i]?.tag === TAG.INTEGER) {
    if (!contentOf(f[i]!).equals(Buffer.from([1])))
      throw reject('unsupported CRL version (podgate writes v2)');
    i++;
  }
  const innerAlg = expectTag(f[i++], TAG.SEQUENCE, 'signature');
  const alg = sigAlgOf(expectTag(outerAlg, TAG.SEQUENCE, 'signatureAlgorithm'));
  if (!alg) throw reject('unsupported signature algorithm');
  if (!rawOf(innerAlg).equals(rawOf(outerAlg!))) throw reject('inner and outer signature algorithms differ');
  const issuer = expectTag(f[i++], TAG.SEQUENCE, 'issuer');
  const thisUpdate = parseTime(f[i++]!);
  let nextUpdate: Date | undefined;
  if (f[i]?.tag === TAG.UTC_TIME || f[i]?.tag === TAG.GENERALIZED_TIME) nextUpdate = parseTime(f[i++]!);
  const serials: string[] = [];
  if (f[i]?.tag === TAG.SEQUENCE) {
    for (const e of childrenOf(f[i++]!)) {
      const [serial] = childrenOf(expectTag(e, TAG.SEQUENCE, 'revokedCertificate'));
      serials.push(integerContentToSerialHex(contentOf(expectTag(serial, TAG.INTEGER, 'userCertificate'))));
    }
  }
  const { number, authorityKeyId } = f[i]?.tag === TAG.CONTEXT_0 ? readExtensions(f[i++]!) : {};
  if (i !== f.length) throw new DerError('TBSCertList: unexpected trailing fields');
  const sig = contentOf(expectTag(sigBits, TAG.BIT_STRING, 'signatureValue'));
  if (sig[0] !== 0) throw new DerError('signatureValue: unused bits');
  return {
    tbsDer: rawOf(tbs!),
    alg,
    signature: sig.subarray(1),
    issuerDer: rawOf(issuer),
    thisUpdate,
    nextUpdate,
    serials,
    number,
    authorityKeyId,
  };
}

/** Returns the CRL number and authority key id; rejects unknown critical extensions. */
function readExtensions(wrapper: Tlv): { number?: number; authorityKeyId?: Buffer } {
  let number: number | undefined;
  let authorityKeyId: Buffer | undefined;
  for (const ext of childrenOf(expectTag(childrenOf(wrapper)[0], TAG.SEQUENCE, 'crlExtensions'))) {
    const parts = childrenOf(expectTag(ext, TAG.SEQUENCE, 'Extension'));
    const oid = oidToString(contentOf(expectTag(parts[0], TAG.OID, 'extnID')));
    const critical = parts.length === 3 && parts[1]!.tag === TAG.BOOLEAN && contentOf(parts[1]!)[0] !== 0;
    const value = contentOf(expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extnValue'));
    if (oid === OID_CRL_NUMBER) {
      const n = contentOf(expectTag(readRoot(value), TAG.INTEGER, 'cRLNumber'));
      number = n.length <= 7 && (n[0]! & 0x80) === 0 ? n.reduce((acc, b) => acc * 256 + b, 0) : -1;
      if (!Number.isSafeInteger(number) || number < 0) throw reject('CRL number is out of range');
    } else if (oid === OID_AUTHORITY_KEY_ID) {
      authorityKeyId = value;
    } else if (critical && !KNOWN_EXTENSIONS.has(oid)) {
      throw reject(`unsupported critical extension ${oid}`);
    }
  }
  return { number, authorityKeyId };
}
