import type { Pool } from 'pg';
import type { AccessRule } from '../../access/types.js';
import { AppError } from '../../lib/errors.js';
import { CountMemo } from '../count-memo.js';
import type { Migration } from '../migrations/migration.js';
import type * as T from '../types.js';
import { PgAccessRules, PgAddresses, PgGroups, PgSessionHistory } from './access-repos.js';
import { PgImportLinks, PgOidc, PgSessions, PgTokens } from './auth-repos.js';
import { clientConfig, loadPg, type PgTarget } from './connection.js';
import { lockInTransaction, PgDb } from './db.js';
import { migratePg } from './migrate.js';
import { pgMigrations } from './migrations/index.js';
import { PgAudit, PgGateways, PgPending, PgState } from './state-audit.js';
import { PgCerts, PgUsers } from './users-certs.js';

/** The repositories on one way into the database (the pool, or one transaction's client). */
class Repos {
  readonly users: PgUsers;
  readonly certs: PgCerts;
  readonly state: PgState;
  readonly audit: PgAudit;
  readonly sessions: PgSessions;
  readonly tokens: PgTokens;
  readonly pending: PgPending;
  readonly gateways: PgGateways;
  readonly oidc: PgOidc;
  readonly importLinks: PgImportLinks;
  readonly history: PgSessionHistory;
  readonly addresses: PgAddresses;
  readonly groups: PgGroups;
  readonly rules: PgAccessRules;

  /** memo: the list totals of the store (the pool); a transaction's repos have none. */
  constructor(
    readonly db: PgDb,
    memo?: CountMemo,
  ) {
    this.users = new PgUsers(db);
    this.certs = new PgCerts(db, memo);
    this.state = new PgState(db);
    this.audit = new PgAudit(db);
    this.sessions = new PgSessions(db);
    this.tokens = new PgTokens(db);
    this.pending = new PgPending(db);
    this.gateways = new PgGateways(db);
    this.oidc = new PgOidc(db);
    this.importLinks = new PgImportLinks(db);
    this.history = new PgSessionHistory(db);
    this.addresses = new PgAddresses(db);
    this.groups = new PgGroups(db);
    this.rules = new PgAccessRules(db);
  }
}

/**
 * Every store method on PostgreSQL. The store itself runs each call on a pooled connection (a method
 * that needs several statements runs them in a transaction of its own); a transaction handle runs
 * every call on its transaction's connection, and refuses calls once that transaction ended.
 */
class PgOps implements T.TxStore {
  protected constructor(private readonly r: Repos) {}

  /** Overridden by the transaction handle to refuse calls after the end of its transaction. */
  protected repos(): Repos {
    return this.r;
  }

  lock(name: string): Promise<void> {
    return lockInTransaction(this.repos().db, name);
  }

  transaction<R>(fn: (tx: T.TxStore) => Promise<R>): Promise<R> {
    return this.repos().db.atomic(async (db) => {
      const handle = new PgTxHandle(new Repos(db));
      try {
        return await fn(handle);
      } finally {
        handle.end();
      }
    });
  }

  // users
  createUser(u: Parameters<PgUsers['createUser']>[0]) {
    return this.repos().users.createUser(u);
  }
  getUserByName(name: string) {
    return this.repos().users.getUserByName(name);
  }
  getUserById(id: number) {
    return this.repos().users.getUserById(id);
  }
  listUsers() {
    return this.repos().users.listUsers();
  }
  updateUser(id: number, patch: Parameters<PgUsers['updateUser']>[1]) {
    return this.repos().users.updateUser(id, patch);
  }

  // certificates
  insertCert(c: T.NewCert) {
    return this.repos().certs.insertCert(c);
  }
  getCert(serial: string) {
    return this.repos().certs.getCert(serial);
  }
  getValidCertByCommonName(commonName: string) {
    return this.repos().certs.getValidCertByCommonName(commonName);
  }
  listCerts(q?: T.CertQuery) {
    return this.repos().certs.listCerts(q);
  }
  listDeviceCerts() {
    return this.repos().certs.listDeviceCerts();
  }
  markRevoked(serial: string, reason: T.RevocationReason, at: Date) {
    return this.repos().certs.markRevoked(serial, reason, at);
  }
  listRevoked() {
    return this.repos().certs.listRevoked();
  }
  touchLastSeen(serials: readonly string[], at: Date) {
    return this.repos().certs.touchLastSeen(serials, at);
  }
  markSuperseding(serial: string, newSerial: string, supersedeAt: Date) {
    return this.repos().certs.markSuperseding(serial, newSerial, supersedeAt);
  }
  listSupersedeDue(now: Date) {
    return this.repos().certs.listSupersedeDue(now);
  }
  assignIssuerKeyId(keyId: string) {
    return this.repos().certs.assignIssuerKeyId(keyId);
  }

  // CRL, settings, cluster
  getCrl() {
    return this.repos().state.getCrl();
  }
  saveCrl(state: T.CrlState) {
    return this.repos().state.saveCrl(state);
  }
  getSetting(key: string) {
    return this.repos().state.getSetting(key);
  }
  setSetting(key: string, value: string) {
    return this.repos().state.setSetting(key, value);
  }
  getClusterSnapshot() {
    return this.repos().state.getClusterSnapshot();
  }
  saveClusterSnapshot(s: T.ClusterSnapshot) {
    return this.repos().state.saveClusterSnapshot(s);
  }

  // audit
  appendAudit(e: T.NewAuditEntry) {
    return this.repos().audit.appendAudit(e);
  }
  listAudit(q?: Parameters<PgAudit['listAudit']>[0]) {
    return this.repos().audit.listAudit(q);
  }
  countAudit(q?: Parameters<PgAudit['countAudit']>[0]) {
    return this.repos().audit.countAudit(q);
  }

  // sessions
  getSession(sid: string, now?: Date) {
    return this.repos().sessions.getSession(sid, now);
  }
  setSession(sid: string, data: string, expiresAt: Date, userId?: number | null) {
    return this.repos().sessions.setSession(sid, data, expiresAt, userId);
  }
  destroySession(sid: string) {
    return this.repos().sessions.destroySession(sid);
  }
  destroySessionsOfUser(userId: number) {
    return this.repos().sessions.destroySessionsOfUser(userId);
  }
  pruneSessions(now: Date) {
    return this.repos().sessions.pruneSessions(now);
  }

  // API tokens
  createToken(t: Parameters<PgTokens['createToken']>[0]) {
    return this.repos().tokens.createToken(t);
  }
  findTokenByHash(tokenHash: string) {
    return this.repos().tokens.findTokenByHash(tokenHash);
  }
  getToken(id: number) {
    return this.repos().tokens.getToken(id);
  }
  listTokens(userId: number) {
    return this.repos().tokens.listTokens(userId);
  }
  listAllTokens() {
    return this.repos().tokens.listAllTokens();
  }
  deleteToken(id: number) {
    return this.repos().tokens.deleteToken(id);
  }
  touchToken(id: number, at: Date) {
    return this.repos().tokens.touchToken(id, at);
  }

  // agent queue
  addPending(p: T.PendingRevocation) {
    return this.repos().pending.addPending(p);
  }
  listPending() {
    return this.repos().pending.listPending();
  }
  clearPending(serials: readonly string[]) {
    return this.repos().pending.clearPending(serials);
  }

  // gateways
  upsertGateway(g: T.GatewayRecord) {
    return this.repos().gateways.upsertGateway(g);
  }
  getGateway(name: string) {
    return this.repos().gateways.getGateway(name);
  }
  listGateways() {
    return this.repos().gateways.listGateways();
  }
  deleteGateway(name: string) {
    return this.repos().gateways.deleteGateway(name);
  }

  // single sign-on identities
  getOidcIdentity(issuer: string, subject: string) {
    return this.repos().oidc.getOidcIdentity(issuer, subject);
  }
  getOidcIdentityOfUser(userId: number) {
    return this.repos().oidc.getOidcIdentityOfUser(userId);
  }
  listOidcIdentities(issuer: string) {
    return this.repos().oidc.listOidcIdentities(issuer);
  }
  insertOidcIdentity(i: Parameters<PgOidc['insertOidcIdentity']>[0]) {
    return this.repos().oidc.insertOidcIdentity(i);
  }
  updateOidcIdentity(...args: Parameters<PgOidc['updateOidcIdentity']>) {
    return this.repos().oidc.updateOidcIdentity(...args);
  }

  // import links
  createImportLink(l: Parameters<PgImportLinks['createImportLink']>[0]) {
    return this.repos().importLinks.createImportLink(l);
  }
  findImportLinkByHash(tokenHash: string) {
    return this.repos().importLinks.findImportLinkByHash(tokenHash);
  }
  claimImportLink(id: number, at: Date, ip: string) {
    return this.repos().importLinks.claimImportLink(id, at, ip);
  }
  releaseImportLink(id: number) {
    return this.repos().importLinks.releaseImportLink(id);
  }
  setImportLinkSerial(id: number, serial: string) {
    return this.repos().importLinks.setImportLinkSerial(id, serial);
  }
  pruneImportLinks(before: Date) {
    return this.repos().importLinks.pruneImportLinks(before);
  }

  // VPN session history
  recordSessions(replica: string, samples: readonly T.LiveSessionSample[], at: Date) {
    return this.repos().history.recordSessions(replica, samples, at);
  }
  listOpenSessions(replica: string) {
    return this.repos().history.listOpenSessions(replica);
  }
  endSession(id: number, reason: T.SessionEndReason, endedAt?: Date) {
    return this.repos().history.endSession(id, reason, endedAt);
  }
  listSessionHistory(q?: T.SessionHistoryQuery) {
    return this.repos().history.listSessionHistory(q);
  }
  usageByDay(since: Date, user?: string) {
    return this.repos().history.usageByDay(since, user);
  }
  pruneSessionHistory(before: Date) {
    return this.repos().history.pruneSessionHistory(before);
  }

  // tunnel addresses
  getAddress(commonName: string) {
    return this.repos().addresses.getAddress(commonName);
  }
  listAddresses() {
    return this.repos().addresses.listAddresses();
  }
  allocateAddress(commonName: string, pool: T.AddressPool, at: Date) {
    return this.repos().addresses.allocateAddress(commonName, pool, at);
  }
  allocateAddresses(commonNames: readonly string[], pool: T.AddressPool, at: Date) {
    return this.repos().addresses.allocateAddresses(commonNames, pool, at);
  }
  releaseAddress(commonName: string) {
    return this.repos().addresses.releaseAddress(commonName);
  }

  // local groups
  createGroup(g: { name: string; description?: string }) {
    return this.repos().groups.createGroup(g);
  }
  getGroup(name: string) {
    return this.repos().groups.getGroup(name);
  }
  listGroups() {
    return this.repos().groups.listGroups();
  }
  deleteGroup(name: string) {
    return this.repos().groups.deleteGroup(name);
  }
  addGroupMember(group: string, userId: number) {
    return this.repos().groups.addGroupMember(group, userId);
  }
  removeGroupMember(group: string, userId: number) {
    return this.repos().groups.removeGroupMember(group, userId);
  }
  localGroupsOf(userId: number) {
    return this.repos().groups.localGroupsOf(userId);
  }

  // access rules and the bundle version
  listRules() {
    return this.repos().rules.listRules();
  }
  getRule(name: string) {
    return this.repos().rules.getRule(name);
  }
  putRule(rule: AccessRule, position: number) {
    return this.repos().rules.putRule(rule, position);
  }
  deleteRule(name: string) {
    return this.repos().rules.deleteRule(name);
  }
  getAccessState() {
    return this.repos().rules.getAccessState();
  }
  bumpAccessVersion() {
    return this.repos().rules.bumpAccessVersion();
  }
  raiseAccessVersion(version: number) {
    return this.repos().rules.raiseAccessVersion(version);
  }
  markAccessPublished(version: number, hash: string) {
    return this.repos().rules.markAccessPublished(version, hash);
  }
}

/** A transaction's handle: every call on its connection, refused once the transaction ended. */
class PgTxHandle extends PgOps {
  private ended = false;

  constructor(private readonly txRepos: Repos) {
    super(txRepos);
  }

  protected override repos(): Repos {
    if (this.ended) {
      throw new AppError(500, 'store_tx_ended', 'this transaction has ended: use the store, not its handle');
    }
    return this.txRepos;
  }

  end(): void {
    this.ended = true;
  }
}

export interface PgOpenOptions {
  /** Schema steps to apply (tests only; default: all of ./migrations). */
  migrations?: readonly Migration[];
}

/**
 * The PostgreSQL implementation of the store: a connection pool of `poolSize` connections, each at
 * the server's default isolation (READ COMMITTED). What must stay single and ordered with several
 * writers is kept so by the schema and the row locks its repositories take (see ./migrations/001-schema.ts).
 */
export class PgStore extends PgOps implements T.Store {
  readonly schemaVersion: number;
  readonly display: string;
  private closed = false;

  private constructor(
    private readonly pool: Pool,
    repos: Repos,
    schemaVersion: number,
    display: string,
  ) {
    super(repos);
    this.schemaVersion = schemaVersion;
    this.display = display;
  }

  /** Connects, brings the schema up to date, and returns the store. */
  static async open(target: PgTarget, options: PgOpenOptions = {}): Promise<PgStore> {
    const pg = await loadPg();
    const pool = new pg.Pool({ ...clientConfig(target), max: target.poolSize, idleTimeoutMillis: 30_000 });
    // an idle pooled connection that the server drops must not crash the process
    pool.on('error', () => undefined);
    try {
      const db = new PgDb(pool, pool, false);
      const version = await migratePg(db, options.migrations ?? pgMigrations);
      return new PgStore(pool, new Repos(db, new CountMemo()), version, target.display);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
  }

  /** Raw access for store-level tools in this directory (the SQLite copy, shared files). */
  withDb<R>(fn: (db: PgDb) => Promise<R>): Promise<R> {
    return fn(new PgDb(this.pool, this.pool, false));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
