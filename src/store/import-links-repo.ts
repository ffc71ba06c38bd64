import type { Database, Statement } from 'better-sqlite3';
import { BadRequest } from '../lib/errors.js';
import { ownedHashError } from './owned-hash-errors.js';
import { fromIso, fromIsoOrNull, intAtLeast, nonEmpty, toIso, type Sync } from './sql-util.js';

/** A one-use import link; the token itself is never stored, only its sha256. */
export interface ImportLink {
  id: number;
  userId: number;
  userName: string;
  deviceName: string;
  keyType: string | null;
  createdAt: Date;
  createdIp: string;
  expiresAt: Date;
  usedAt: Date | null;
  usedIp: string | null;
  certSerial: string | null;
}

export interface ImportLinkStore {
  /** BadRequest 'userId' for an unknown user; Conflict 'tokenHash' for a hash already stored. */
  createImportLink(l: {
    userId: number;
    tokenHash: string;
    deviceName: string;
    keyType: string | null;
    createdAt: Date;
    createdIp: string;
    expiresAt: Date;
  }): Promise<ImportLink>;
  findImportLinkByHash(tokenHash: string): Promise<ImportLink | undefined>;
  /**
   * Marks the link used by `ip` at `at` when it is unused and unexpired at `at`; returns whether this
   * call did it (exactly one of two racing fetches gets true).
   */
  claimImportLink(id: number, at: Date, ip: string): Promise<boolean>;
  /** Gives a claimed link back (the profile could not be made), so it can be fetched again. */
  releaseImportLink(id: number): Promise<void>;
  setImportLinkSerial(id: number, serial: string): Promise<void>;
  /** Removes links that expired before `before`, used or not; returns how many. */
  pruneImportLinks(before: Date): Promise<number>;
}

/** An import_links row joined with its owner's name, as both engines return it. */
export interface LinkRow {
  id: number;
  user_id: number;
  user_name: string;
  device_name: string;
  key_type: string | null;
  created_at: string;
  created_ip: string;
  expires_at: string;
  used_at: string | null;
  used_ip: string | null;
  cert_serial: string | null;
}

export function toLink(r: LinkRow): ImportLink {
  return {
    id: r.id,
    userId: r.user_id,
    userName: r.user_name,
    deviceName: r.device_name,
    keyType: r.key_type,
    createdAt: fromIso(r.created_at),
    createdIp: r.created_ip,
    expiresAt: fromIso(r.expires_at),
    usedAt: fromIsoOrNull(r.used_at),
    usedIp: r.used_ip,
    certSerial: r.cert_serial,
  };
}

/** The link columns and join every link read uses (both engines). */
export const LINK_SELECT =
  'SELECT l.*, u.name AS user_name FROM import_links l JOIN users u ON u.id = l.user_id';

/**
 * The positional values of createImportLink (checked: 400 naming the field): user, token hash (a
 * sha256 hex digest), device, key type, created, created from, expires.
 */
export function importLinkValues(l: Parameters<ImportLinkStore['createImportLink']>[0]): unknown[] {
  const userId = intAtLeast('userId', l.userId, 1);
  const hash = nonEmpty('tokenHash', l.tokenHash);
  if (!/^[0-9a-f]{64}$/.test(hash))
    throw new BadRequest('tokenHash must be a sha256 hex digest', 'tokenHash');
  return [
    userId,
    hash,
    nonEmpty('deviceName', l.deviceName),
    l.keyType,
    toIso('createdAt', l.createdAt),
    nonEmpty('createdIp', l.createdIp),
    toIso('expiresAt', l.expiresAt),
  ];
}

export class SqliteImportLinks implements Sync<ImportLinkStore> {
  private readonly insert: Statement;
  private readonly byHash: Statement;
  private readonly claim: Statement;
  private readonly release: Statement;
  private readonly serial: Statement;
  private readonly prune: Statement;

  constructor(db: Database) {
    this.insert = db.prepare(
      `INSERT INTO import_links (user_id, token_hash, device_name, key_type, created_at, created_ip, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    );
    this.byHash = db.prepare(`${LINK_SELECT} WHERE l.token_hash = ?`);
    this.claim = db.prepare(
      'UPDATE import_links SET used_at = ?, used_ip = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?',
    );
    this.release = db.prepare(
      'UPDATE import_links SET used_at = NULL, used_ip = NULL WHERE id = ? AND cert_serial IS NULL',
    );
    this.serial = db.prepare('UPDATE import_links SET cert_serial = ? WHERE id = ?');
    this.prune = db.prepare('DELETE FROM import_links WHERE expires_at < ?');
  }

  createImportLink(l: Parameters<ImportLinkStore['createImportLink']>[0]): ImportLink {
    const values = importLinkValues(l);
    const [userId, hash] = values as [number, string];
    try {
      this.insert.get(...values);
      return toLink(this.byHash.get(hash) as LinkRow);
    } catch (err) {
      throw ownedHashError(err, userId);
    }
  }

  findImportLinkByHash(tokenHash: string): ImportLink | undefined {
    const r = this.byHash.get(tokenHash) as LinkRow | undefined;
    return r && toLink(r);
  }

  claimImportLink(id: number, at: Date, ip: string): boolean {
    const t = toIso('at', at);
    return this.claim.run(t, ip, id, t).changes === 1;
  }

  releaseImportLink(id: number): void {
    this.release.run(id);
  }

  setImportLinkSerial(id: number, serial: string): void {
    this.serial.run(serial, id);
  }

  pruneImportLinks(before: Date): number {
    return this.prune.run(toIso('before', before)).changes;
  }
}
