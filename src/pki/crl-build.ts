import { createPublicKey, type KeyObject } from 'node:crypto';
import { AppError, BadRequest } from '../lib/errors.js';
import { isSerial, SERIAL_RULE } from '../lib/serial.js';
import { verifySignature, type Signer } from './algorithms.js';
import { CLOCK_SKEW_MS, DAY_MS } from './time.js';
import { encodeTlv, serialHexToIntegerContent, serialHexToIntegerHex, TAG, toPem } from './der.js';
import type { RevocationReason, RevokedEntry } from './types.js';

/**
 * Builds a v2 CRL (forge has no CRL API) straight into Buffers and signs it natively. forge.asn1 was
 * tried first: its binary-string encoding spent most of its time in garbage collection (~240 ms for
 * 10,000 entries); writing each entry once as a Buffer keeps it linear and ~10x faster.
 */

/** RFC 5280 §5.3.1 CRLReason values (7 is unused; removeFromCRL and aACompromise are not offered). */
export const REASON_CODES: Readonly<Record<RevocationReason, number>> = {
  unspecified: 0,
  keyCompromise: 1,
  caCompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
};

const OID_REASON = Buffer.from('0603551d15', 'hex'); // 2.5.29.21
const OID_CRL_NUMBER = Buffer.from('0603551d14', 'hex'); // 2.5.29.20
const OID_AKI = Buffer.from('0603551d23', 'hex'); // 2.5.29.35
const MAX_NEXT_UPDATE_DAYS = 3650;

/** crlEntryExtensions holding one reason code, precomputed per reason; none for "unspecified". */
const REASON_EXTENSIONS = Object.fromEntries(
  Object.entries(REASON_CODES).map(([reason, code]) => [
    reason,
    code === 0
      ? undefined
      : encodeTlv(TAG.SEQUENCE, extension(OID_REASON, encodeTlv(TAG.ENUMERATED, Buffer.from([code])))),
  ]),
) as Record<RevocationReason, Buffer | undefined>;

/** What the CA hands to the builder. */
export interface CrlIssuer {
  certPem: string;
  issuerDer: Buffer;
  ski: Buffer;
  signer: Signer;
}

export interface CrlOptions {
  number: number;
  entries: readonly RevokedEntry[];
  nextUpdateDays: number;
  now?: Date;
}

/**
 * Returns PEM "X509 CRL": issuer = the CA subject byte for byte, thisUpdate = now − 5 min, nextUpdate =
 * now + nextUpdateDays, CRL number and AKI extensions, a reason code per entry (omitted for
 * "unspecified", as RFC 5280 recommends); no revokedCertificates field when empty. Verified against the CA
 * before it is returned.
 */
export function buildCrl(o: CrlOptions, ca: CrlIssuer): string {
  const entries = checkOptions(o);
  const now = o.now ?? new Date();
  const thisUpdate = new Date(now.getTime() - CLOCK_SKEW_MS);
  const nextUpdate = new Date(now.getTime() + o.nextUpdateDays * DAY_MS);

  const fields: Buffer[] = [
    encodeTlv(TAG.INTEGER, Buffer.from([1])), // v2
    ca.signer.algorithm.der,
    ca.issuerDer,
    time(thisUpdate),
    time(nextUpdate),
  ];
  if (o.entries.length > 0) fields.push(encodeTlv(TAG.SEQUENCE, encodeEntries(entries)));
  const aki = encodeTlv(TAG.SEQUENCE, encodeTlv(0x80, ca.ski)); // [0] IMPLICIT keyIdentifier
  const crlNumber = encodeTlv(TAG.INTEGER, serialHexToIntegerContent(evenHex(o.number)));
  fields.push(
    encodeTlv(
      TAG.CONTEXT_0,
      encodeTlv(TAG.SEQUENCE, extension(OID_AKI, aki), extension(OID_CRL_NUMBER, crlNumber)),
    ),
  );
  const tbsDer = encodeTlv(TAG.SEQUENCE, ...fields);
  const signature = ca.signer.sign(tbsDer);
  const der = encodeTlv(
    TAG.SEQUENCE,
    tbsDer,
    ca.signer.algorithm.der,
    encodeTlv(TAG.BIT_STRING, Buffer.from([0]), signature),
  );
  // Checked against the CA before it leaves: the signature must verify with the CA certificate's key.
  // (Issuer and times are written above from the CA itself; verifyCrl re-parses everything, and
  // the agent runs it on every CRL it receives.)
  if (!verifySignature(ca.signer.algorithm, tbsDer, caPublicKey(ca.certPem), signature)) {
    throw new AppError(500, 'crl_signature', 'the CRL signature does not verify against the CA certificate');
  }
  return toPem('X509 CRL', der);
}

/** revokedCertificates content: the entries' encodings, concatenated. */
function encodeEntries(entries: readonly CheckedEntry[]): Buffer {
  const encoded = entries.map(encodeEntry);
  return Buffer.concat(
    encoded,
    encoded.reduce((n, b) => n + b.length, 0),
  );
}

/**
 * Encoded entries are remembered: a CRL is re-signed after every revocation over the same rows, so
 * only the new entry is ever encoded again. Bounded so that a long-lived process cannot grow without end.
 */
const ENTRY_CACHE_LIMIT = 200_000;
const entryCache = new Map<string, Buffer>();

function encodeEntry(e: CheckedEntry): Buffer {
  const key = `${e.serialHex}/${e.revokedAt.getTime()}/${e.reason}`;
  let der = entryCache.get(key);
  if (der) return der;
  const time = timeString(e.revokedAt);
  const reason = REASON_EXTENSIONS[e.reason];
  const contentLength = 2 + e.serialHex.length / 2 + 2 + time.length + (reason?.length ?? 0);
  der = Buffer.alloc(2 + contentLength);
  let pos = 0;
  der[pos++] = TAG.SEQUENCE;
  der[pos++] = contentLength; // every entry is shorter than 128 bytes: one-byte short-form length
  der[pos++] = TAG.INTEGER;
  der[pos++] = e.serialHex.length / 2;
  pos += der.write(e.serialHex, pos, 'hex');
  der[pos++] = time.length === 13 ? TAG.UTC_TIME : TAG.GENERALIZED_TIME;
  der[pos++] = time.length;
  pos += der.write(time, pos, 'latin1');
  if (reason) reason.copy(der, pos);
  if (entryCache.size >= ENTRY_CACHE_LIMIT) entryCache.clear();
  entryCache.set(key, der);
  return der;
}

/** An entry after validation: the serial as DER INTEGER content hex. */
interface CheckedEntry {
  serialHex: string;
  revokedAt: Date;
  reason: RevocationReason;
}

function checkOptions(o: CrlOptions): CheckedEntry[] {
  if (!Number.isSafeInteger(o.number) || o.number < 0)
    throw new BadRequest('number must be a non-negative integer', 'number');
  if (
    typeof o.nextUpdateDays !== 'number' ||
    !(o.nextUpdateDays > 0 && o.nextUpdateDays <= MAX_NEXT_UPDATE_DAYS)
  ) {
    throw new BadRequest(
      `nextUpdateDays must be more than 0 and at most ${MAX_NEXT_UPDATE_DAYS}`,
      'nextUpdateDays',
    );
  }
  if (o.now !== undefined && !(o.now instanceof Date && !Number.isNaN(o.now.getTime()))) {
    throw new BadRequest('now must be a valid Date', 'now');
  }
  const seen = new Set<string>();
  return o.entries.map((e, i) => {
    const field = () => `entries[${i}]`;
    // Entries come from the store, so a serial in any other form is a bug upstream, not user input.
    if (!isSerial(e.serial)) {
      throw new BadRequest(
        `${field()}.serial must be upper-case ${SERIAL_RULE}, even length`,
        `${field()}.serial`,
      );
    }
    const serialHex = serialHexToIntegerHex(e.serial);
    if (seen.has(serialHex)) {
      throw new BadRequest(`${field()}.serial ${e.serial} is listed twice`, `${field()}.serial`);
    }
    seen.add(serialHex);
    if (!(e.revokedAt instanceof Date) || Number.isNaN(e.revokedAt.getTime())) {
      throw new BadRequest(`${field()}.revokedAt must be a valid Date`, `${field()}.revokedAt`);
    }
    if (!Object.hasOwn(REASON_CODES, e.reason)) {
      throw new BadRequest(
        `${field()}.reason must be one of ${Object.keys(REASON_CODES).join(', ')}`,
        `${field()}.reason`,
      );
    }
    return { serialHex, revokedAt: e.revokedAt, reason: e.reason };
  });
}

/** Extension ::= SEQUENCE { extnID, extnValue OCTET STRING } (non-critical: the field is omitted). */
function extension(oidDer: Buffer, value: Buffer): Buffer {
  return encodeTlv(TAG.SEQUENCE, oidDer, encodeTlv(TAG.OCTET_STRING, value));
}

function time(d: Date): Buffer {
  const t = timeString(d);
  return encodeTlv(t.length === 13 ? TAG.UTC_TIME : TAG.GENERALIZED_TIME, Buffer.from(t, 'latin1'));
}

/** UTCTime text through 2049, GeneralizedTime text from 2050 (RFC 5280 §5.1.2.4): whole seconds, Z. */
function timeString(d: Date): string {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ for years 0-9999
  const digits =
    iso.slice(0, 4) +
    iso.slice(5, 7) +
    iso.slice(8, 10) +
    iso.slice(11, 13) +
    iso.slice(14, 16) +
    iso.slice(17, 19);
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? `${digits.slice(2)}Z` : `${digits}Z`;
}

function evenHex(n: number): string {
  const h = n.toString(16);
  return h.length % 2 ? `0${h}` : h;
}

const publicKeys = new Map<string, KeyObject>();
function caPublicKey(certPem: string): KeyObject {
  let key = publicKeys.get(certPem);
  if (!key) {
    key = createPublicKey(certPem);
    publicKeys.set(certPem, key);
  }
  return key;
}
