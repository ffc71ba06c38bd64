import { BadRequest, Conflict } from '../lib/errors.js';
import { CERT_KINDS } from '../lib/cert-vocabulary.js';
import { isSerial, SERIAL_RULE } from '../lib/serial.js';
import { fromIso, fromIsoOrNull, intAtLeast, nonEmpty, oneOf, text, toIso } from './sql-util.js';
import type { CertKind, CertRecord, CertStatus, DeviceCert, NewCert, RevocationReason } from './types.js';

export { CERT_KINDS, REVOCATION_REASONS } from '../lib/cert-vocabulary.js';
export const CERT_STATUSES: readonly CertStatus[] = ['valid', 'revoked'];

/** The select list and join every certificate read uses (alias c = certificates, u = owner). */
export const CERT_SELECT = `SELECT c.serial, c.common_name, c.owner_id, u.name AS owner_name, c.device_name, c.kind,
  c.key_type, c.not_before, c.not_after, c.status, c.revoked_at, c.revocation_reason, c.cert_pem,
  c.created_at, c.last_seen_at, c.superseded_by, c.supersede_at, c.issuer_ski, c.issued_from
FROM certificates c LEFT JOIN users u ON u.id = c.owner_id`;

export interface CertRow {
  serial: string;
  common_name: string;
  owner_id: number | null;
  owner_name: string | null;
  device_name: string;
  kind: CertKind;
  key_type: string;
  not_before: string;
  not_after: string;
  status: CertStatus;
  revoked_at: string | null;
  revocation_reason: RevocationReason | null;
  cert_pem: string;
  created_at: string;
  last_seen_at: string | null;
  superseded_by: string | null;
  supersede_at: string | null;
  issuer_ski: string | null;
  issued_from: 'generated' | 'csr';
}

export function toCert(r: CertRow): CertRecord {
  return {
    serial: r.serial,
    commonName: r.common_name,
    ownerId: r.owner_id,
    ownerName: r.owner_name,
    deviceName: r.device_name,
    kind: r.kind,
    keyType: r.key_type,
    notBefore: fromIso(r.not_before),
    notAfter: fromIso(r.not_after),
    status: r.status,
    revokedAt: fromIsoOrNull(r.revoked_at),
    revocationReason: r.revocation_reason,
    certPem: r.cert_pem,
    createdAt: fromIso(r.created_at),
    lastSeenAt: fromIsoOrNull(r.last_seen_at),
    supersededBy: r.superseded_by,
    supersedeAt: fromIsoOrNull(r.supersede_at),
    issuerKeyId: r.issuer_ski,
    keyFromCsr: r.issued_from === 'csr',
  };
}

/** The columns of a DeviceCert (listDeviceCerts), without the table's name: one table, no join. */
export const DEVICE_CERT_COLUMNS = 'serial, common_name, owner_id, kind, not_before, not_after';

export type DeviceCertRow = Pick<
  CertRow,
  'serial' | 'common_name' | 'owner_id' | 'kind' | 'not_before' | 'not_after'
>;

export function toDeviceCert(r: DeviceCertRow): DeviceCert {
  return {
    serial: r.serial,
    commonName: r.common_name,
    ownerId: r.owner_id,
    kind: r.kind,
    notBefore: fromIso(r.not_before),
    notAfter: fromIso(r.not_after),
  };
}

/** 400 (field serial) unless upper-case hex of even length. */
export function checkSerial(serial: unknown): string {
  if (!isSerial(serial))
    throw new BadRequest(`serial must be upper-case ${SERIAL_RULE}, even length`, 'serial');
  return serial;
}

/** 409: the common name already has a current certificate. */
export function cnConflict(commonName: string): Conflict {
  return new Conflict(`commonName '${commonName}' already has a valid certificate`, 'commonName');
}

/** The named parameters of insertCert (checked: 400 naming the field). */
export function newCertParams(c: NewCert) {
  const p = {
    serial: checkSerial(c.serial),
    commonName: nonEmpty('commonName', c.commonName),
    ownerId: c.ownerId === null ? null : intAtLeast('owner', c.ownerId, 1),
    deviceName: text('deviceName', c.deviceName),
    kind: oneOf('kind', c.kind, CERT_KINDS),
    keyType: nonEmpty('keyType', c.keyType),
    notBefore: toIso('notBefore', c.notBefore),
    notAfter: toIso('notAfter', c.notAfter),
    certPem: nonEmpty('certPem', c.certPem),
    createdAt: new Date().toISOString(),
    issuerKeyId: c.issuerKeyId ?? null,
    issuedFrom: c.keyFromCsr === true ? 'csr' : 'generated',
  };
  if (p.notAfter <= p.notBefore) throw new BadRequest('notAfter must be after notBefore', 'notAfter');
  return p;
}
