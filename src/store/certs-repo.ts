import type { Database, Statement } from 'better-sqlite3';
import { BadRequest, Conflict, NotFound } from '../lib/errors.js';
import { CertLister } from './cert-query.js';
import {
  CERT_SELECT,
  checkSerial,
  cnConflict,
  DEVICE_CERT_COLUMNS,
  newCertParams,
  REVOCATION_REASONS,
  toCert,
  toDeviceCert,
  type CertRow,
  type DeviceCertRow,
} from './cert-rows.js';
import { nonEmpty, oneOf, sqliteCode, toIso, type Tx, type Sync } from './sql-util.js';
import type { CertQuery, CertRecord, CertStore, DeviceCert, NewCert, RevocationReason } from './types.js';

/** Certificates table: issue, look up, list, revoke. Never holds a private key. */
export class SqliteCerts implements Sync<CertStore> {
  private readonly insert: Statement;
  private readonly bySerial: Statement;
  private readonly validByCn: Statement;
  private readonly userExists: Statement;
  private readonly otherOwnerOfCn: Statement;
  private readonly revoke: Statement;
  private readonly revoked: Statement;
  private readonly touch: Statement;
  private readonly supersede: Statement;
  private readonly assignIssuer: Statement;
  private readonly supersedeDue: Statement;
  private readonly deviceCerts: Statement;
  private readonly lister: CertLister;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    this.insert = db.prepare(
      `INSERT INTO certificates (serial, common_name, owner_id, device_name, kind, key_type, not_before,
         not_after, cert_pem, created_at, issuer_ski, owner_name, issued_from)
       VALUES (@serial, @commonName, @ownerId, @deviceName, @kind, @keyType, @notBefore, @notAfter, @certPem,
         @createdAt, @issuerKeyId, coalesce((SELECT name FROM users WHERE id = @ownerId), ''), @issuedFrom)`,
    );
    this.bySerial = db.prepare(`${CERT_SELECT} WHERE c.serial = ?`);
    this.validByCn = db.prepare(
      `${CERT_SELECT} WHERE c.common_name = ? AND c.status = 'valid' AND c.superseded_by IS NULL`,
    );
    this.assignIssuer = db.prepare('UPDATE certificates SET issuer_ski = ? WHERE issuer_ski IS NULL');
    this.supersede = db.prepare(
      `UPDATE certificates SET superseded_by = ?, supersede_at = ?
       WHERE serial = ? AND status = 'valid' AND superseded_by IS NULL`,
    );
    this.supersedeDue = db
      .prepare(
        `SELECT serial FROM certificates
         WHERE status = 'valid' AND supersede_at IS NOT NULL AND supersede_at <= ? ORDER BY supersede_at`,
      )
      .pluck();
    // listCerts' default order (created_at DESC, rowid DESC): the bundle allocates missing addresses in it
    this.deviceCerts = db.prepare(
      `SELECT ${DEVICE_CERT_COLUMNS} FROM certificates
       WHERE status = 'valid' AND kind != 'server' ORDER BY created_at DESC, rowid DESC`,
    );
    this.userExists = db.prepare('SELECT 1 FROM users WHERE id = ?').pluck();
    this.otherOwnerOfCn = db
      .prepare('SELECT 1 FROM certificates WHERE common_name = ? AND owner_id IS NOT ? LIMIT 1')
      .pluck();
    this.revoke = db.prepare(
      `UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?
       WHERE serial = ? AND status = 'valid'`,
    );
    this.revoked = db.prepare(
      `SELECT serial, common_name, not_after, revoked_at, revocation_reason, issuer_ski FROM certificates
       WHERE status = 'revoked' ORDER BY revoked_at, serial`,
    );
    // only moves forward: a late report of an older sighting must not hide a newer one
    this.touch = db.prepare(
      `UPDATE certificates SET last_seen_at = @at
       WHERE serial = @serial AND (last_seen_at IS NULL OR last_seen_at < @at)`,
    );
    this.lister = new CertLister(db);
  }

  insertCert(c: NewCert): CertRecord {
    const params = newCertParams(c);
    return this.tx(() => {
      // checked first for a clear message; the constraints below still guard against races
      if (this.getCert(params.serial))
        throw new Conflict(`serial '${params.serial}' already exists`, 'serial');
      if (params.ownerId !== null && this.userExists.get(params.ownerId) === undefined) {
        throw new BadRequest(`owner ${params.ownerId} does not exist`, 'owner');
      }
      if (this.getValidCertByCommonName(params.commonName)) throw cnConflict(params.commonName);
      // A common name is what OpenVPN, the status page and the logs know a client by: once given to one
      // owner (or to the server, owner null) it never names someone else's certificate, even after
      // revocation. This also keeps names made before device names lost their "." unambiguous.
      if (this.otherOwnerOfCn.get(params.commonName, params.ownerId) !== undefined) {
        throw new Conflict(
          `commonName '${params.commonName}' belongs to another owner's certificates; choose another name`,
          'commonName',
        );
      }
      try {
        this.insert.run(params);
      } catch (err) {
        const code = sqliteCode(err);
        if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new Conflict(`serial '${params.serial}' already exists`, 'serial');
        }
        if (code === 'SQLITE_CONSTRAINT_UNIQUE') throw cnConflict(params.commonName);
        if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
          throw new BadRequest(`owner ${params.ownerId} does not exist`, 'owner');
        }
        throw err;
      }
      return this.getCert(params.serial) as CertRecord;
    });
  }

  getCert(serial: string): CertRecord | undefined {
    const row = this.bySerial.get(serial) as CertRow | undefined;
    return row && toCert(row);
  }

  getValidCertByCommonName(commonName: string): CertRecord | undefined {
    const row = this.validByCn.get(commonName) as CertRow | undefined;
    return row && toCert(row);
  }

  listCerts(q?: CertQuery): { total: number; items: CertRecord[]; nextCursor?: string } {
    return this.lister.list(q);
  }

  listDeviceCerts(): DeviceCert[] {
    return (this.deviceCerts.all() as DeviceCertRow[]).map(toDeviceCert);
  }

  markRevoked(serial: string, reason: RevocationReason, at: Date): CertRecord {
    const why = oneOf('reason', reason, REVOCATION_REASONS);
    const when = toIso('at', at);
    return this.tx(() => {
      const cert = this.getCert(serial);
      if (!cert) throw new NotFound(`certificate ${serial} not found`);
      if (cert.status === 'revoked') throw new Conflict(`certificate ${serial} is already revoked`, 'serial');
      this.revoke.run(when, why, serial);
      return this.getCert(serial) as CertRecord;
    });
  }

  listRevoked(): Awaited<ReturnType<CertStore['listRevoked']>> {
    const rows = this.revoked.all() as Pick<
      CertRow,
      'serial' | 'common_name' | 'not_after' | 'revoked_at' | 'revocation_reason' | 'issuer_ski'
    >[];
    return rows.map((r) => ({
      serial: r.serial,
      commonName: r.common_name,
      notAfter: new Date(r.not_after),
      revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
      revocationReason: r.revocation_reason,
      issuerKeyId: r.issuer_ski,
    }));
  }

  assignIssuerKeyId(keyId: string): number {
    return this.assignIssuer.run(nonEmpty('keyId', keyId)).changes;
  }

  markSuperseding(serial: string, newSerial: string, supersedeAt: Date): CertRecord {
    const successor = checkSerial(newSerial);
    const when = toIso('supersedeAt', supersedeAt);
    return this.tx(() => {
      const cert = this.getCert(serial);
      if (!cert) throw new NotFound(`certificate ${serial} not found`);
      if (cert.status === 'revoked') throw new Conflict(`certificate ${serial} is revoked`, 'serial');
      if (cert.supersededBy !== null)
        throw new Conflict(`certificate ${serial} was already renewed (by ${cert.supersededBy})`, 'serial');
      this.supersede.run(successor, when, serial);
      return this.getCert(serial) as CertRecord;
    });
  }

  listSupersedeDue(now: Date): string[] {
    return this.supersedeDue.all(toIso('now', now)) as string[];
  }

  touchLastSeen(serials: readonly string[], at: Date): void {
    const when = toIso('at', at);
    this.tx(() => {
      for (const serial of serials) this.touch.run({ serial, at: when });
    });
  }
}
