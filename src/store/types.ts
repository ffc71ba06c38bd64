/**
 * The storage interfaces podgate's services depend on. The SQLite implementation lives in
 * ./sqlite-store.ts; nothing outside src/store knows it is SQLite.
 * Times are JavaScript Dates (stored as ISO-8601 UTC text). Serials are upper-case hex, even length,
 * exactly as `openssl x509 -serial` prints them.
 */

export type Role = 'admin' | 'user';

export interface User {
  id: number;
  name: string;
  role: Role;
  /** argon2id PHC string, or null for an account that cannot sign in with a password yet. */
  passwordHash: string | null;
  disabled: boolean;
  createdAt: Date;
}

export type CertKind = 'client' | 'server' | 'gateway';
export type CertStatus = 'valid' | 'revoked';
export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'caCompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn';

export interface CertRecord {
  serial: string;
  commonName: string;
  /** Owning user's id (null for the server certificate). */
  ownerId: number | null;
  /** Owner's name, joined for convenience on reads. */
  ownerName: string | null;
  deviceName: string;
  kind: CertKind;
  keyType: string;
  notBefore: Date;
  notAfter: Date;
  status: CertStatus;
  revokedAt: Date | null;
  revocationReason: RevocationReason | null;
  certPem: string;
  createdAt: Date;
  /** Last time a live session of this certificate was seen by the agent. */
  lastSeenAt: Date | null;
}

export type NewCert = Omit<CertRecord, 'status' | 'revokedAt' | 'revocationReason' | 'createdAt' | 'lastSeenAt' | 'ownerName'>;

export interface CertQuery {
  search?: string; // substring of common name, device name or owner name
  ownerId?: number;
  status?: CertStatus;
  kind?: CertKind;
  expiringWithinDays?: number;
  sort?: 'commonName' | 'owner' | 'notAfter' | 'createdAt' | 'status';
  order?: 'asc' | 'desc';
  limit?: number;
  offset?: number;
}

export interface CrlState {
  /** Monotonic CRL number; the next CRL gets number + 1. */
  number: number;
  pem: string;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface AuditEntry {
  id: number;
  time: Date;
  actor: string;
  action: string;
  target: string;
  result: 'ok' | 'error' | 'pending';
  details: Record<string, unknown>;
}
export type NewAuditEntry = Omit<AuditEntry, 'id' | 'time'> & { time?: Date };

export interface UserStore {
  createUser(u: { name: string; role: Role; passwordHash: string | null }): User; // Conflict on duplicate name
  getUserByName(name: string): User | undefined;
  getUserById(id: number): User | undefined;
  listUsers(): User[];
  updateUser(id: number, patch: Partial<Pick<User, 'role' | 'passwordHash' | 'disabled'>>): User;
}

export interface CertStore {
  insertCert(c: NewCert): CertRecord; // Conflict on duplicate serial, or duplicate valid commonName
  getCert(serial: string): CertRecord | undefined;
  /** The valid certificate with this common name, if any (common names are unique among valid certs). */
  getValidCertByCommonName(commonName: string): CertRecord | undefined;
  listCerts(q?: CertQuery): { total: number; items: CertRecord[] };
  /** Marks revoked; returns the updated record; Conflict if already revoked, NotFound if unknown. */
  markRevoked(serial: string, reason: RevocationReason, at: Date): CertRecord;
  listRevoked(): Pick<CertRecord, 'serial' | 'revokedAt' | 'revocationReason'>[];
  touchLastSeen(serials: readonly string[], at: Date): void;
}

export interface CrlStore {
  getCrl(): CrlState | undefined;
  saveCrl(state: CrlState): void;
}

export interface AuditStore {
  appendAudit(e: NewAuditEntry): AuditEntry;
  listAudit(q?: { limit?: number; offset?: number; action?: string; target?: string }): AuditEntry[];
}

export interface SettingsStore {
  getSetting(key: string): string | undefined;
  setSetting(key: string, value: string): void;
}

/** Everything together, plus a transaction helper: fn runs atomically (all or nothing). */
export interface Store extends UserStore, CertStore, CrlStore, AuditStore, SettingsStore {
  transaction<T>(fn: () => T): T;
  close(): void;
}
