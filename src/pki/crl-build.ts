import forge from 'node-forge';
import { BadRequest } from '../lib/errors.js';
import type { Signer } from './algorithms.js';
import { CLOCK_SKEW_MS, DAY_MS } from './time.js';
import { encodeTlv, isSerialHex, serialHexToIntegerContent, TAG, toPem } from './der.js';
import { verifyCrl } from './crl-verify.js';
import type { RevocationReason, RevokedEntry } from './types.js';

/**
 * Builds a v2 CRL with forge.asn1 (forge has no CRL API) and signs it natively. Linear in the number of
 * entries: each entry is a handful of small ASN.1 nodes, encoded once.
 */

const { asn1 } = forge;
const { Class, Type } = asn1;

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

const OID_REASON = '2.5.29.21';
const OID_CRL_NUMBER = '2.5.29.20';
const OID_AKI = '2.5.29.35';
const MAX_NEXT_UPDATE_DAYS = 3650;

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
  checkOptions(o);
  const now = o.now ?? new Date();
  const thisUpdate = new Date(now.getTime() - CLOCK_SKEW_MS);
  const nextUpdate = new Date(now.getTime() + o.nextUpdateDays * DAY_MS);

  const fields: forge.asn1.Asn1[] = [
    asn1.create(Class.UNIVERSAL, Type.INTEGER, false, '\x01'), // v2
    fromDer(ca.signer.algorithm.der),
    fromDer(ca.issuerDer),
    time(thisUpdate),
    time(nextUpdate),
  ];
  if (o.entries.length > 0) {
    fields.push(asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, o.entries.map(entry)));
  }
  fields.push(
    asn1.create(Class.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
        extension(OID_AKI, seq([asn1.create(Class.CONTEXT_SPECIFIC, 0, false, ca.ski.toString('binary'))])),
        extension(OID_CRL_NUMBER, integer(serialHexToIntegerContent(evenHex(o.number)))),
      ]),
    ]),
  );
  const tbsDer = Buffer.from(asn1.toDer(seq(fields)).getBytes(), 'binary');
  const signature = ca.signer.sign(tbsDer);
  const der = encodeTlv(
    TAG.SEQUENCE,
    tbsDer,
    ca.signer.algorithm.der,
    encodeTlv(TAG.BIT_STRING, Buffer.from([0]), signature),
  );
  const pem = toPem('X509 CRL', der);
  verifyCrl(pem, ca.certPem, now);
  return pem;
}

function entry(e: RevokedEntry): forge.asn1.Asn1 {
  const parts = [integer(serialHexToIntegerContent(e.serial)), time(e.revokedAt)];
  const code = REASON_CODES[e.reason];
  if (code !== 0) {
    const enumerated = asn1.create(Class.UNIVERSAL, Type.ENUMERATED, false, String.fromCharCode(code));
    parts.push(seq([extension(OID_REASON, enumerated)]));
  }
  return seq(parts);
}

function checkOptions(o: CrlOptions): void {
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
  o.entries.forEach((e, i) => {
    const field = `entries[${i}]`;
    if (typeof e.serial !== 'string' || !isSerialHex(e.serial)) {
      throw new BadRequest(`${field}.serial must be hex, even length, 1-20 bytes`, `${field}.serial`);
    }
    const key = e.serial.toUpperCase().replace(/^(00)+(?=..)/, '');
    if (seen.has(key)) throw new BadRequest(`${field}.serial ${key} is listed twice`, `${field}.serial`);
    seen.add(key);
    if (!(e.revokedAt instanceof Date) || Number.isNaN(e.revokedAt.getTime())) {
      throw new BadRequest(`${field}.revokedAt must be a valid Date`, `${field}.revokedAt`);
    }
    if (!Object.hasOwn(REASON_CODES, e.reason)) {
      throw new BadRequest(
        `${field}.reason must be one of ${Object.keys(REASON_CODES).join(', ')}`,
        `${field}.reason`,
      );
    }
  });
}

function seq(children: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, children);
}

function integer(content: Buffer): forge.asn1.Asn1 {
  return asn1.create(Class.UNIVERSAL, Type.INTEGER, false, content.toString('binary'));
}

function extension(oid: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([
    asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(oid).getBytes()),
    asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, asn1.toDer(value).getBytes()),
  ]);
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §5.1.2.4). */
function time(d: Date): forge.asn1.Asn1 {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050
    ? asn1.create(Class.UNIVERSAL, Type.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(Class.UNIVERSAL, Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

function fromDer(der: Buffer): forge.asn1.Asn1 {
  return asn1.fromDer(der.toString('binary'));
}

function evenHex(n: number): string {
  const h = n.toString(16);
  return h.length % 2 ? `0${h}` : h;
}
