import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { AppError } from '../lib/errors.js';
import type { AccessRule } from '../access/types.js';
import { SqliteAccessRules } from './access-repo.js';
import { SqliteAddresses } from './addresses-repo.js';
import { SqliteAudit } from './audit-repo.js';
import { SqliteCerts } from './certs-repo.js';
import { SqliteGateways } from './gateways-repo.js';
import { SqliteGroups } from './groups-repo.js';
import { SqliteOidcIdentities } from './oidc-repo.js';
import { migrate } from './migrate.js';
import { migrations as allMigrations, type Migration } from './migrations/index.js';
import { SqlitePending } from './pending-repo.js';
import { SqliteSessions } from './sessions-repo.js';
import type { Tx } from './sql-util.js';
import { SqliteState } from './state-repo.js';
import { SqliteTokens } from './tokens-repo.js';
import type * as T from './types.js';
import { SqliteUsers } from './users-repo.js';

/** How long a writer waits for another process's write lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

export interface OpenOptions {
  /** Schema steps to apply (tests only; default: all of ./migrations). */
  migrations?: readonly Migration[];
}

/** Makes the parent directory (0700 when created here) and the file (always 0600: it holds password hashes). */
function prepareFile(file: string): void {
  const dir = dirname(file);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // the umask may have removed bits; never let it add any
  }
  closeSync(openSync(file, 'a', 0o600));
  // SQLite gives the -wal and -shm files the mode of the database file
  chmodSync(file, 0o600);
}

/**
 * The SQLite implementation of every store interface, on one connection in WAL mode with foreign keys on.
 * Durability: `synchronous=FULL`, so a commit that returned survives a crash of the process or the machine
 * (writes are rare: issue, revoke, sign-in). Safe to open the same file from several processes (web + CLI).
 */
export class SqliteStore implements T.Store {
  readonly file: string;
  readonly schemaVersion: number;
  private readonly db: Database.Database;
  private readonly tx: Tx;
  private readonly users: SqliteUsers;
  private readonly certs: SqliteCerts;
  private readonly state: SqliteState;
  private readonly audit: SqliteAudit;
  private readonly sessions: SqliteSessions;
  private readonly tokens: SqliteTokens;
  private readonly pending: SqlitePending;
  private readonly gateways: SqliteGateways;
  private readonly oidc: SqliteOidcIdentities;
  private readonly addresses: SqliteAddresses;
  private readonly groups: SqliteGroups;
  private readonly rules: SqliteAccessRules;

  private constructor(file: string, db: Database.Database, options: OpenOptions) {
    this.file = file;
    this.db = db;
    this.schemaVersion = migrate(db, options.migrations ?? allMigrations);
    // one wrapper made once; IMMEDIATE takes the write lock up front, so a read-then-write body cannot
    // fail half-way with SQLITE_BUSY when another process writes; nested calls become savepoints
    const run = db.transaction((fn: () => unknown) => fn());
    this.tx = <R>(fn: () => R): R => run.immediate(fn) as R;
    this.users = new SqliteUsers(db);
    this.certs = new SqliteCerts(db, this.tx);
    this.state = new SqliteState(db);
    this.audit = new SqliteAudit(db);
    this.sessions = new SqliteSessions(db);
    this.tokens = new SqliteTokens(db);
    this.pending = new SqlitePending(db, this.tx);
    this.gateways = new SqliteGateways(db);
    this.oidc = new SqliteOidcIdentities(db);
    this.addresses = new SqliteAddresses(db, this.tx);
    this.groups = new SqliteGroups(db, this.tx);
    this.rules = new SqliteAccessRules(db, this.tx);
  }

  /** Opens (creating if needed) the database file and brings its schema up to date. */
  static open(file: string, options: OpenOptions = {}): SqliteStore {
    const path = resolve(file);
    prepareFile(path);
    const db = new Database(path);
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') {
        throw new AppError(
          500,
          'store_open',
          `cannot use WAL journal mode for ${path} (got ${String(mode)})`,
        );
      }
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      return new SqliteStore(path, db, options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  transaction<R>(fn: () => R): R {
    return this.tx(fn);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // users
  createUser(u: Parameters<T.UserStore['createUser']>[0]): T.User {
    return this.users.createUser(u);
  }
  getUserByName(name: string): T.User | undefined {
    return this.users.getUserByName(name);
  }
  getUserById(id: number): T.User | undefined {
    return this.users.getUserById(id);
  }
  listUsers(): T.User[] {
    return this.users.listUsers();
  }
  updateUser(id: number, patch: Parameters<T.UserStore['updateUser']>[1]): T.User {
    return this.users.updateUser(id, patch);
  }

  // certificates
  insertCert(c: T.NewCert): T.CertRecord {
    return this.certs.insertCert(c);
  }
  getCert(serial: string): T.CertRecord | undefined {
    return this.certs.getCert(serial);
  }
  getValidCertByCommonName(commonName: string): T.CertRecord | undefined {
    return this.certs.getValidCertByCommonName(commonName);
  }
  listCerts(q?: T.CertQuery): { total: number; items: T.CertRecord[] } {
    return this.certs.listCerts(q);
  }
  markRevoked(serial: string, reason: T.RevocationReason, at: Date): T.CertRecord {
    return this.certs.markRevoked(serial, reason, at);
  }
  listRevoked(): ReturnType<T.CertStore['listRevoked']> {
    return this.certs.listRevoked();
  }
  touchLastSeen(serials: readonly string[], at: Date): void {
    this.certs.touchLastSeen(serials, at);
  }
  markSuperseding(serial: string, newSerial: string, supersedeAt: Date): T.CertRecord {
    return this.certs.markSuperseding(serial, newSerial, supersedeAt);
  }
  listSupersedeDue(now: Date): string[] {
    return this.certs.listSupersedeDue(now);
  }
  assignIssuerKeyId(keyId: string): number {
    return this.certs.assignIssuerKeyId(keyId);
  }

  // CRL, settings, cluster
  getCrl(): T.CrlState | undefined {
    return this.state.getCrl();
  }
  saveCrl(state: T.CrlState): void {
    this.state.saveCrl(state);
  }
  getSetting(key: string): string | undefined {
    return this.state.getSetting(key);
  }
  setSetting(key: string, value: string): void {
    this.state.setSetting(key, value);
  }
  getClusterSnapshot(): T.ClusterSnapshot | undefined {
    return this.state.getClusterSnapshot();
  }
  saveClusterSnapshot(s: T.ClusterSnapshot): void {
    this.state.saveClusterSnapshot(s);
  }

  // audit
  appendAudit(e: T.NewAuditEntry): T.AuditEntry {
    return this.audit.appendAudit(e);
  }
  listAudit(q?: Parameters<T.AuditStore['listAudit']>[0]): T.AuditEntry[] {
    return this.audit.listAudit(q);
  }
  countAudit(q?: Parameters<T.AuditStore['countAudit']>[0]): number {
    return this.audit.countAudit(q);
  }

  // sessions
  getSession(sid: string, now?: Date): T.SessionRecord | undefined {
    return this.sessions.getSession(sid, now);
  }
  setSession(sid: string, data: string, expiresAt: Date, userId?: number | null): void {
    this.sessions.setSession(sid, data, expiresAt, userId);
  }
  destroySession(sid: string): void {
    this.sessions.destroySession(sid);
  }
  destroySessionsOfUser(userId: number): number {
    return this.sessions.destroySessionsOfUser(userId);
  }
  pruneSessions(now: Date): number {
    return this.sessions.pruneSessions(now);
  }

  // API tokens
  createToken(t: Parameters<T.TokenStore['createToken']>[0]): T.ApiToken {
    return this.tokens.createToken(t);
  }
  findTokenByHash(tokenHash: string): T.ApiToken | undefined {
    return this.tokens.findTokenByHash(tokenHash);
  }
  getToken(id: number): T.ApiToken | undefined {
    return this.tokens.getToken(id);
  }
  listTokens(userId: number): T.ApiToken[] {
    return this.tokens.listTokens(userId);
  }
  listAllTokens(): T.ApiToken[] {
    return this.tokens.listAllTokens();
  }
  deleteToken(id: number): void {
    this.tokens.deleteToken(id);
  }
  touchToken(id: number, at: Date): void {
    this.tokens.touchToken(id, at);
  }

  // agent queue
  addPending(p: T.PendingRevocation): void {
    this.pending.addPending(p);
  }
  listPending(): T.PendingRevocation[] {
    return this.pending.listPending();
  }
  clearPending(serials: readonly string[]): number {
    return this.pending.clearPending(serials);
  }

  // gateways
  upsertGateway(g: T.GatewayRecord): T.GatewayRecord {
    return this.gateways.upsertGateway(g);
  }
  getGateway(name: string): T.GatewayRecord | undefined {
    return this.gateways.getGateway(name);
  }
  listGateways(): T.GatewayRecord[] {
    return this.gateways.listGateways();
  }
  deleteGateway(name: string): void {
    this.gateways.deleteGateway(name);
  }

  // single sign-on identities
  getOidcIdentity(issuer: string, subject: string): T.OidcIdentity | undefined {
    return this.oidc.getOidcIdentity(issuer, subject);
  }
  getOidcIdentityOfUser(userId: number): T.OidcIdentity | undefined {
    return this.oidc.getOidcIdentityOfUser(userId);
  }
  listOidcIdentities(issuer: string): T.OidcIdentity[] {
    return this.oidc.listOidcIdentities(issuer);
  }
  insertOidcIdentity(i: Parameters<T.OidcIdentityStore['insertOidcIdentity']>[0]): T.OidcIdentity {
    return this.oidc.insertOidcIdentity(i);
  }
  updateOidcIdentity(...args: Parameters<T.OidcIdentityStore['updateOidcIdentity']>): void {
    this.oidc.updateOidcIdentity(...args);
  }

  // tunnel addresses
  getAddress(commonName: string): T.DeviceAddress | undefined {
    return this.addresses.getAddress(commonName);
  }
  listAddresses(): T.DeviceAddress[] {
    return this.addresses.listAddresses();
  }
  allocateAddress(commonName: string, pool: T.AddressPool, at: Date): T.DeviceAddress {
    return this.addresses.allocateAddress(commonName, pool, at);
  }
  releaseAddress(commonName: string): boolean {
    return this.addresses.releaseAddress(commonName);
  }

  // local groups
  createGroup(g: { name: string; description?: string }): T.LocalGroup {
    return this.groups.createGroup(g);
  }
  getGroup(name: string): T.LocalGroup | undefined {
    return this.groups.getGroup(name);
  }
  listGroups(): T.LocalGroup[] {
    return this.groups.listGroups();
  }
  deleteGroup(name: string): void {
    this.groups.deleteGroup(name);
  }
  addGroupMember(group: string, userId: number): void {
    this.groups.addGroupMember(group, userId);
  }
  removeGroupMember(group: string, userId: number): void {
    this.groups.removeGroupMember(group, userId);
  }
  localGroupsOf(userId: number): string[] {
    return this.groups.localGroupsOf(userId);
  }

  // access rules and the bundle version
  listRules(): T.StoredRule[] {
    return this.rules.listRules();
  }
  getRule(name: string): T.StoredRule | undefined {
    return this.rules.getRule(name);
  }
  putRule(rule: AccessRule, position: number): boolean {
    return this.rules.putRule(rule, position);
  }
  deleteRule(name: string): void {
    this.rules.deleteRule(name);
  }
  getAccessState(): T.AccessState {
    return this.rules.getAccessState();
  }
  bumpAccessVersion(): number {
    return this.rules.bumpAccessVersion();
  }
  markAccessPublished(version: number, hash: string): void {
    this.rules.markAccessPublished(version, hash);
  }
}
