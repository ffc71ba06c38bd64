import { BadRequest, Conflict, NotFound } from '../../lib/errors.js';
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
} from '../cert-rows.js';
import { intAtLeast, nonEmpty, oneOf, toIso } from '../sql-util.js';
import type { CertQuery, CertRecord, DeviceCert, NewCert, RevocationReason, Role, User } from '../types.js';
import { listCerts } from './cert-list.js';
import type { CountMemo } from '../count-memo.js';
import { hashOrNull, ROLES, toUser, USER_COLS, userPatch, type UserRow } from '../users-repo.js';
import { LOCK } from '../locks.js';
import {
  constraintError,
  lockInTransaction,
  pgConstraint,
  pgCode,
  UNIQUE_VIOLATION,
  type PgDb,
} from './db.js';

/** users (PostgreSQL); same rules as ../users-repo.ts. */
export class PgUsers {
  constructor(private readonly db: PgDb) {}

  async createUser(u: { name: string; role: Role; passwordHash: string | null }): Promise<User> {
    const name = nonEmpty('name', u.name);
    const role = oneOf('role', u.role, ROLES);
    const hash = hashOrNull(u.passwordHash);
    try {
      const row = await this.db.atomic((db) =>
        db.get<UserRow>(
          `INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING ${USER_COLS}`,
          [name, role, hash, new Date().toISOString()],
        ),
      );
      return toUser(row!);
    } catch (err) {
      throw constraintError(err, { unique: () => new Conflict(`user '${name}' already exists`, 'name') });
    }
  }

  async getUserByName(name: string): Promise<User | undefined> {
    const r = await this.db.get<UserRow>(`SELECT ${USER_COLS} FROM users WHERE name = ?`, [name]);
    return r && toUser(r);
  }

  async getUserById(id: number): Promise<User | undefined> {
    if (!Number.isSafeInteger(id) || id < 1 || id > 2 ** 31 - 1) return undefined;
    const r = await this.db.get<UserRow>(`SELECT ${USER_COLS} FROM users WHERE id = ?`, [id]);
    return r && toUser(r);
  }

  async listUsers(): Promise<User[]> {
    return (await this.db.all<UserRow>(`SELECT ${USER_COLS} FROM users ORDER BY name`)).map(toUser);
  }

  async updateUser(
    id: number,
    patch: Partial<Pick<User, 'role' | 'passwordHash' | 'disabled'>>,
  ): Promise<User> {
    intAtLeast('id', id, 1);
    const { role, setHash, hash, disabled } = userPatch(patch);
    const row = await this.db.atomic(async (db) => {
      const before = await db.get<UserRow>(`SELECT ${USER_COLS} FROM users WHERE id = ? FOR UPDATE`, [id]);
      if (!before) return undefined;
      const after = (await db.get<UserRow>(
        `UPDATE users SET role = coalesce(@role::text, role),
           password_hash = CASE WHEN @setHash::boolean THEN @hash::text ELSE password_hash END,
           disabled = coalesce(@disabled::integer, disabled)
         WHERE id = @id RETURNING ${USER_COLS}`,
        { id, role, setHash: setHash === 1, hash, disabled },
      ))!;
      if (after.role !== before.role || after.disabled !== before.disabled || setHash) {
        await db.run('DELETE FROM sessions WHERE user_id = ?', [id]);
      }
      if (after.disabled === 1) await db.run('DELETE FROM api_tokens WHERE user_id = ?', [id]);
      return after;
    });
    if (!row) throw new NotFound(`user ${id} not found`);
    return toUser(row);
  }
}

/** certificates (PostgreSQL); same rules as ../certs-repo.ts. */
export class PgCerts {
  /** memo: the store's list totals (none in a transaction: see CountMemo). */
  constructor(
    private readonly db: PgDb,
    private readonly memo?: CountMemo,
  ) {}

  async insertCert(c: NewCert): Promise<CertRecord> {
    const p = newCertParams(c);
    try {
      return await this.db.atomic(async (db) => {
        // one writer per common name at a time: the owner rule below has no constraint of its own
        await lockInTransaction(db, LOCK.commonName(p.commonName));
        const certs = new PgCerts(db);
        if (await certs.getCert(p.serial))
          throw new Conflict(`serial '${p.serial}' already exists`, 'serial');
        if (p.ownerId !== null && !(await db.get('SELECT 1 AS x FROM users WHERE id = ?', [p.ownerId]))) {
          throw new BadRequest(`owner ${p.ownerId} does not exist`, 'owner');
        }
        if (await certs.getValidCertByCommonName(p.commonName)) throw cnConflict(p.commonName);
        const other = await db.get(
          'SELECT 1 AS x FROM certificates WHERE common_name = ? AND owner_id IS DISTINCT FROM ?::integer LIMIT 1',
          [p.commonName, p.ownerId],
        );
        if (other) {
          throw new Conflict(
            `commonName '${p.commonName}' belongs to another owner's certificates; choose another name`,
            'commonName',
          );
        }
        await db.run(
          `INSERT INTO certificates (serial, common_name, owner_id, device_name, kind, key_type, not_before,
             not_after, cert_pem, created_at, issuer_ski, owner_name, issued_from)
           VALUES (@serial, @commonName, @ownerId, @deviceName, @kind, @keyType, @notBefore, @notAfter, @certPem,
             @createdAt, @issuerKeyId, coalesce((SELECT name FROM users WHERE id = @ownerId::integer), ''), @issuedFrom)`,
          p,
        );
        return (await certs.getCert(p.serial))!;
      });
    } catch (err) {
      if (pgCode(err) === UNIQUE_VIOLATION) {
        if (pgConstraint(err) === 'certificates_pkey') {
          throw new Conflict(`serial '${p.serial}' already exists`, 'serial');
        }
        throw cnConflict(p.commonName);
      }
      throw constraintError(err, {
        foreignKey: () => new BadRequest(`owner ${p.ownerId} does not exist`, 'owner'),
      });
    }
  }

  async getCert(serial: string): Promise<CertRecord | undefined> {
    const r = await this.db.get<CertRow>(`${CERT_SELECT} WHERE c.serial = ?`, [serial]);
    return r && toCert(r);
  }

  async getValidCertByCommonName(commonName: string): Promise<CertRecord | undefined> {
    const r = await this.db.get<CertRow>(
      `${CERT_SELECT} WHERE c.common_name = ? AND c.status = 'valid' AND c.superseded_by IS NULL`,
      [commonName],
    );
    return r && toCert(r);
  }

  listCerts(q?: CertQuery): Promise<{ total: number; items: CertRecord[]; nextCursor?: string }> {
    return listCerts(this.db, q, this.memo);
  }

  async listDeviceCerts(): Promise<DeviceCert[]> {
    // listCerts' default order (created_at DESC, serial DESC): the bundle allocates missing addresses in it
    const rows = await this.db.all<DeviceCertRow>(
      `SELECT ${DEVICE_CERT_COLUMNS} FROM certificates
       WHERE status = 'valid' AND kind != 'server' ORDER BY created_at DESC, serial DESC`,
    );
    return rows.map(toDeviceCert);
  }

  async markRevoked(serial: string, reason: RevocationReason, at: Date): Promise<CertRecord> {
    const why = oneOf('reason', reason, REVOCATION_REASONS);
    const when = toIso('at', at);
    return this.db.atomic(async (db) => {
      const changed = await db.run(
        `UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?
         WHERE serial = ? AND status = 'valid'`,
        [when, why, serial],
      );
      const cert = await new PgCerts(db).getCert(serial);
      if (!cert) throw new NotFound(`certificate ${serial} not found`);
      if (changed === 0) throw new Conflict(`certificate ${serial} is already revoked`, 'serial');
      return cert;
    });
  }

  async listRevoked(): Promise<
    Pick<
      CertRecord,
      'serial' | 'commonName' | 'notAfter' | 'revokedAt' | 'revocationReason' | 'issuerKeyId'
    >[]
  > {
    const rows = await this.db.all<
      Pick<
        CertRow,
        'serial' | 'common_name' | 'not_after' | 'revoked_at' | 'revocation_reason' | 'issuer_ski'
      >
    >(
      `SELECT serial, common_name, not_after, revoked_at, revocation_reason, issuer_ski FROM certificates
       WHERE status = 'revoked' ORDER BY revoked_at, serial`,
    );
    return rows.map((r) => ({
      serial: r.serial,
      commonName: r.common_name,
      notAfter: new Date(r.not_after),
      revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
      revocationReason: r.revocation_reason,
      issuerKeyId: r.issuer_ski,
    }));
  }

  assignIssuerKeyId(keyId: string): Promise<number> {
    return this.db.run('UPDATE certificates SET issuer_ski = ? WHERE issuer_ski IS NULL', [
      nonEmpty('keyId', keyId),
    ]);
  }

  async markSuperseding(serial: string, newSerial: string, supersedeAt: Date): Promise<CertRecord> {
    const successor = checkSerial(newSerial);
    const when = toIso('supersedeAt', supersedeAt);
    return this.db.atomic(async (db) => {
      const changed = await db.run(
        `UPDATE certificates SET superseded_by = ?, supersede_at = ?
         WHERE serial = ? AND status = 'valid' AND superseded_by IS NULL`,
        [successor, when, serial],
      );
      const cert = await new PgCerts(db).getCert(serial);
      if (!cert) throw new NotFound(`certificate ${serial} not found`);
      if (changed === 0) {
        if (cert.status === 'revoked') throw new Conflict(`certificate ${serial} is revoked`, 'serial');
        throw new Conflict(`certificate ${serial} was already renewed (by ${cert.supersededBy})`, 'serial');
      }
      return cert;
    });
  }

  async listSupersedeDue(now: Date): Promise<string[]> {
    const rows = await this.db.all<{ serial: string }>(
      `SELECT serial FROM certificates
       WHERE status = 'valid' AND supersede_at IS NOT NULL AND supersede_at <= ? ORDER BY supersede_at`,
      [toIso('now', now)],
    );
    return rows.map((r) => r.serial);
  }

  async touchLastSeen(serials: readonly string[], at: Date): Promise<void> {
    const when = toIso('at', at);
    if (serials.length === 0) return;
    // only moves forward: a late report of an older sighting must not hide a newer one
    await this.db.run(
      `UPDATE certificates SET last_seen_at = ?
       WHERE serial = ANY(?::text[]) AND (last_seen_at IS NULL OR last_seen_at < ?)`,
      [when, [...serials], when],
    );
  }
}
