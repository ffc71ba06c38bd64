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

import type { CertKind, RevocationReason } from '../lib/cert-vocabulary.js';
import type { OidcIdentityStore } from './oidc-repo.js';
import type { AddressStore } from './addresses-repo.js';
import type { GroupStore } from './groups-repo.js';
import type { AccessRuleStore } from './access-repo.js';
export type { OidcIdentity, OidcIdentityStore } from './oidc-repo.js';
import type { ImportLinkStore } from './import-links-repo.js';
import type { SessionHistoryStore } from './session-history-repo.js';
export type { ImportLink, ImportLinkStore } from './import-links-repo.js';
export type {
  LiveSessionSample,
  SessionEndReason,
  SessionHistoryQuery,
  SessionHistoryRecord,
  SessionHistoryStore,
  UsageDay,
} from './session-history-repo.js';
export type { AddressPool, AddressStore, BulkAllocation, DeviceAddress } from './addresses-repo.js';
export type { GroupStore, LocalGroup } from './groups-repo.js';
export type { AccessRuleStore, AccessState, StoredRule } from './access-repo.js';
export type { CertKind, RevocationReason };
export type CertStatus = 'valid' | 'revoked';

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
  /** Set on a renewed certificate: the serial of its successor (this one is no longer current). */
  supersededBy: string | null;
  /** When a renewed, still valid certificate is revoked as `superseded` (end of the grace period). */
  supersedeAt: Date | null;
  /** Key id (hex SKI) of the CA that issued it; null on rows older than CA rotation support (that CA). */
  issuerKeyId: string | null;
  /** The key came from a certificate request (it never left the device); renewals then need one too. */
  keyFromCsr: boolean;
}

/**
 * What the access bundle reads of a certificate (listDeviceCerts): no PEM and none of the text it does
 * not use, so a publication at 10,000 devices does not build 10,000 full records.
 */
export type DeviceCert = Pick<
  CertRecord,
  'serial' | 'commonName' | 'ownerId' | 'kind' | 'notBefore' | 'notAfter'
>;

export type NewCert = Omit<
  CertRecord,
  | 'status'
  | 'revokedAt'
  | 'revocationReason'
  | 'createdAt'
  | 'lastSeenAt'
  | 'ownerName'
  | 'supersededBy'
  | 'supersedeAt'
  | 'issuerKeyId'
  | 'keyFromCsr'
> & { issuerKeyId?: string | null; keyFromCsr?: boolean };

export interface CertQuery {
  search?: string; // substring of common name, device name or owner name (ASCII case-insensitive; % and _ are literal)
  ownerId?: number;
  status?: CertStatus;
  kind?: CertKind;
  /** Valid or not, not yet expired at `now` and expiring at most this many days after it. */
  expiringWithinDays?: number;
  /** Reference time for `expiringWithinDays` (default: the current time). */
  now?: Date;
  sort?: 'commonName' | 'owner' | 'notAfter' | 'createdAt' | 'status';
  order?: 'asc' | 'desc';
  /** Page size (integer >= 0); all rows when absent. */
  limit?: number;
  offset?: number;
  /**
   * Keyset pagination: the `nextCursor` of the previous page (same filter, sort and order). The page then
   * starts right after that row, read from the index however deep it is; `offset` still applies after it.
   */
  after?: string;
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
  createUser(u: { name: string; role: Role; passwordHash: string | null }): Promise<User>; // Conflict on duplicate name
  getUserByName(name: string): Promise<User | undefined>;
  getUserById(id: number): Promise<User | undefined>;
  listUsers(): Promise<User[]>;
  /**
   * A new password hash, a changed role or a changed disabled flag also ends every web session of the
   * user, and disabling deletes their API tokens, in the same transaction.
   */
  updateUser(id: number, patch: Partial<Pick<User, 'role' | 'passwordHash' | 'disabled'>>): Promise<User>;
}

export interface CertStore {
  insertCert(c: NewCert): Promise<CertRecord>; // Conflict on duplicate serial, or duplicate valid commonName
  getCert(serial: string): Promise<CertRecord | undefined>;
  /**
   * The current certificate with this common name, if any: valid and not superseded by a renewal
   * (common names are unique among current certificates; a renewed one stays valid beside it until its
   * grace period ends).
   */
  getValidCertByCommonName(commonName: string): Promise<CertRecord | undefined>;
  /**
   * Marks a current certificate as renewed by `newSerial` (inserted in the same transaction), to be
   * revoked as superseded at `supersedeAt`. Conflict when it is revoked or already renewed, NotFound if unknown.
   */
  markSuperseding(serial: string, newSerial: string, supersedeAt: Date): Promise<CertRecord>;
  /** Valid renewed certificates whose grace period has ended at `now`. */
  listSupersedeDue(now: Date): Promise<string[]>;
  listCerts(q?: CertQuery): Promise<{ total: number; items: CertRecord[]; nextCursor?: string }>;
  /**
   * Every valid client and gateway certificate (expired ones included: the caller decides at its own
   * `now`), in listCerts' default order (newest first), with only the DeviceCert columns.
   */
  listDeviceCerts(): Promise<DeviceCert[]>;
  /** Marks revoked; returns the updated record; Conflict if already revoked, NotFound if unknown. */
  markRevoked(serial: string, reason: RevocationReason, at: Date): Promise<CertRecord>;
  /**
   * Every revoked certificate, oldest revocation first (commonName: the agent finds sessions by it;
   * notAfter: expired ones leave the CRL).
   */
  listRevoked(): Promise<
    Pick<
      CertRecord,
      'serial' | 'commonName' | 'notAfter' | 'revokedAt' | 'revocationReason' | 'issuerKeyId'
    >[]
  >;
  /** CA rotation: gives every certificate of the current CA (issuerKeyId null) this key id; returns how many. */
  assignIssuerKeyId(keyId: string): Promise<number>;
  touchLastSeen(serials: readonly string[], at: Date): Promise<void>;
}

export interface CrlStore {
  getCrl(): Promise<CrlState | undefined>;
  /** Conflict (field 'number') unless state.number is greater than the saved one: two writers cannot both publish N+1. */
  saveCrl(state: CrlState): Promise<void>;
}

export interface AuditStore {
  appendAudit(e: NewAuditEntry): Promise<AuditEntry>;
  /** Newest first; limit defaults to 100. `beforeId`: only entries older than that one (keyset paging). */
  listAudit(q?: {
    limit?: number;
    offset?: number;
    beforeId?: number;
    action?: string;
    target?: string;
  }): Promise<AuditEntry[]>;
  /** How many entries match (the same filters as listAudit). */
  countAudit(q?: { action?: string; target?: string }): Promise<number>;
}

export interface SettingsStore {
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
}

/** Named locks that a transaction holds until it ends. */
export interface LockStore {
  /**
   * Takes the lock `name` (one of ../store/locks.ts `LOCK`) for the rest of the calling transaction: a
   * second transaction taking the same name waits until this one commits or rolls back, then goes on
   * (and reads what the first wrote). For what no row lock covers: a row that may not exist yet (a
   * setting read in order to write it, the first admin), a rule across rows. SQLite: nothing to take,
   * its write transaction already excludes every other writer; PostgreSQL: a transaction-scoped
   * advisory lock. Refused (500) outside a transaction, where it would protect nothing.
   */
  lock(name: string): Promise<void>;
}

/** Server-side web sessions (the express session store writes through this). */
export interface SessionRecord {
  data: string;
  expiresAt: Date;
  /** The signed-in user, or null for an anonymous session. */
  userId: number | null;
}

export interface SessionStore {
  /** The session, or undefined when unknown or expired at `now` (default: the current time). */
  getSession(sid: string, now?: Date): Promise<SessionRecord | undefined>;
  /** Creates or replaces the whole session, user included (BadRequest 'userId' for an unknown user). */
  setSession(sid: string, data: string, expiresAt: Date, userId?: number | null): Promise<void>;
  /** Idempotent. */
  destroySession(sid: string): Promise<void>;
  /** Signs a user out everywhere (password change, disable); returns how many sessions were removed. */
  destroySessionsOfUser(userId: number): Promise<number>;
  /** Removes sessions expired at `now`; returns how many. */
  pruneSessions(now: Date): Promise<number>;
}

/** An API token; only a hash of the secret is stored (the caller hashes, the store never sees the secret). */
export interface ApiToken {
  id: number;
  userId: number;
  /** The owner's name, for lists. */
  userName: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  /** Refused from this time on; null only for tokens the caller made without an expiry. */
  expiresAt: Date | null;
}

export interface TokenStore {
  /** BadRequest 'userId' for an unknown user, Conflict 'tokenHash' for a hash already stored. */
  createToken(t: {
    userId: number;
    name: string;
    tokenHash: string;
    expiresAt?: Date | null;
  }): Promise<ApiToken>;
  findTokenByHash(tokenHash: string): Promise<ApiToken | undefined>;
  getToken(id: number): Promise<ApiToken | undefined>;
  /** Oldest first. */
  listTokens(userId: number): Promise<ApiToken[]>;
  /** Every user's tokens, by owner name then age (for admins). */
  listAllTokens(): Promise<ApiToken[]>;
  /** NotFound for an unknown id. */
  deleteToken(id: number): Promise<void>;
  touchToken(id: number, at: Date): Promise<void>;
}

/** A revocation the agent has applied to the CRL file but not yet to live sessions (survives restarts). */
export interface PendingRevocation {
  serial: string;
  commonName: string;
  crlNumber: number;
  queuedAt: Date;
}

export interface PendingStore {
  /** Adding a serial again keeps the first queuedAt and the highest crlNumber. */
  addPending(p: PendingRevocation): Promise<void>;
  /** Oldest first. */
  listPending(): Promise<PendingRevocation[]>;
  /** Returns how many were removed; unknown serials are ignored. */
  clearPending(serials: readonly string[]): Promise<number>;
}

/** An office gateway host provisioned over SSH. */
export interface GatewayRecord {
  name: string;
  /** Where it is reached, e.g. `user@host:22`. */
  target: string;
  /** The gateway's client certificate (must exist in the certificate table), or null before issue. */
  certSerial: string | null;
  /** Owned by the gateway module (e.g. 'provisioning', 'ready', 'error'). */
  status: string;
  details: Record<string, unknown>;
  updatedAt: Date;
}

export interface GatewayStore {
  /** Creates or replaces by name (BadRequest 'certSerial' for an unknown certificate). */
  upsertGateway(g: GatewayRecord): Promise<GatewayRecord>;
  getGateway(name: string): Promise<GatewayRecord | undefined>;
  /** Sorted by name. */
  listGateways(): Promise<GatewayRecord[]>;
  /** NotFound for an unknown name. */
  deleteGateway(name: string): Promise<void>;
}

/** The last cluster discovery, kept as JSON in settings; `data` belongs to the cluster module. */
export interface ClusterSnapshot {
  discoveredAt: Date;
  data: Record<string, unknown>;
}

export interface ClusterStore {
  getClusterSnapshot(): Promise<ClusterSnapshot | undefined>;
  saveClusterSnapshot(s: ClusterSnapshot): Promise<void>;
}

/**
 * Everything a transaction's function may use: every store method plus nested transactions. A method is
 * atomic on its own where its comment says so (an engine runs it in one transaction, or as a savepoint
 * inside the caller's); any other sequence of calls that must not see another writer in between belongs
 * in `transaction`. Engines must not assume that nothing else runs between two calls outside one.
 */
export interface TxStore
  extends
    UserStore,
    CertStore,
    CrlStore,
    AuditStore,
    SettingsStore,
    LockStore,
    SessionStore,
    TokenStore,
    PendingStore,
    GatewayStore,
    ClusterStore,
    OidcIdentityStore,
    ImportLinkStore,
    SessionHistoryStore,
    AddressStore,
    GroupStore,
    AccessRuleStore {
  /**
   * Runs fn in one write transaction: all of it commits when fn's Promise resolves, none of it when fn
   * throws or rejects (the error is passed on). fn makes every store call on the `tx` handle it is given,
   * never on the store it came from (SQLite refuses that; PostgreSQL would run it outside the
   * transaction), and the handle is dead once the transaction ended. Keep fn short and free of slow
   * awaits (key generation, network): other writers wait for it.
   * Called on a transaction handle, it is a savepoint: a throw rolls back only the nested part (the outer
   * transaction goes on if the caller catches it); nested transactions on one handle run one at a time.
   * Isolation: at least PostgreSQL's READ COMMITTED; SQLite gives serializable (one writer at a time).
   * Rows that a transaction reads and then updates from what it read must be locked by the engine
   * (`SELECT … FOR UPDATE` or an atomic UPDATE) where the method comments ask for atomicity.
   */
  transaction<T>(fn: (tx: TxStore) => Promise<T>): Promise<T>;
}

/** The store a process opens: every method, transactions, and close. */
export interface Store extends TxStore {
  /** Waits for an open transaction to finish, then releases the connection(s). Idempotent. */
  close(): Promise<void>;
}
