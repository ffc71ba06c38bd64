import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { lazyStatements } from './lazy-statements.js';
import { AsyncMutex } from '../lib/async-mutex.js';
import { AppError } from '../lib/errors.js';
import type { AccessRule } from '../access/types.js';
import { SqliteAccessRules } from './access-repo.js';
import { SqliteAddresses } from './addresses-repo.js';
import { SqliteAudit } from './audit-repo.js';
import { SqliteCerts } from './certs-repo.js';
import { SqliteGateways } from './gateways-repo.js';
import { SqliteImportLinks } from './import-links-repo.js';
import { SqliteSessionHistory } from './session-history-repo.js';
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

/** SQLite page cache per connection, KiB (see open()). */
const PAGE_CACHE_KIB = 4096;

/** The repositories of one connection, shared by the store and its transaction handles. */
class Repos {
  readonly users: SqliteUsers;
  readonly certs: SqliteCerts;
  readonly state: SqliteState;
  readonly audit: SqliteAudit;
  readonly sessions: SqliteSessions;
  readonly tokens: SqliteTokens;
  readonly pending: SqlitePending;
  readonly gateways: SqliteGateways;
  readonly oidc: SqliteOidcIdentities;
  readonly importLinks: SqliteImportLinks;
  readonly history: SqliteSessionHistory;
  readonly addresses: SqliteAddresses;
  readonly groups: SqliteGroups;
  readonly rules: SqliteAccessRules;

  constructor(db: Database.Database) {
    // one wrapper made once, for the repositories' own multi-statement methods: IMMEDIATE takes the write
    // lock up front, so a read-then-write body cannot fail half-way with SQLITE_BUSY when another process
    // writes; inside an open transaction (store.transaction) better-sqlite3 makes it a savepoint
    const run = db.transaction((fn: () => unknown) => fn());
    const tx: Tx = <R>(fn: () => R): R => run.immediate(fn) as R;
    this.users = new SqliteUsers(db);
    this.certs = new SqliteCerts(db, tx);
    this.state = new SqliteState(db);
    this.audit = new SqliteAudit(db);
    this.sessions = new SqliteSessions(db);
    this.tokens = new SqliteTokens(db);
    this.pending = new SqlitePending(db, tx);
    this.gateways = new SqliteGateways(db);
    this.oidc = new SqliteOidcIdentities(db);
    this.importLinks = new SqliteImportLinks(db);
    this.history = new SqliteSessionHistory(db, tx);
    this.addresses = new SqliteAddresses(db, tx);
    this.groups = new SqliteGroups(db, tx);
    this.rules = new SqliteAccessRules(db, tx);
  }
}

/**
 * Every store method, on the repositories; `run` decides when a call may touch the connection (the
 * store: when no transaction holds it; a transaction handle: right away, while its transaction is open).
 * better-sqlite3 is synchronous, so each method runs to the end in one go once `run` lets it start.
 */
abstract class SqliteOps implements T.TxStore {
  protected constructor(
    protected readonly db: Database.Database,
    protected readonly repos: Repos,
  ) {}

  protected abstract run<R>(fn: (r: Repos) => R): Promise<R>;
  abstract transaction<R>(fn: (tx: T.TxStore) => Promise<R>): Promise<R>;

  lock(name: string): Promise<void> {
    // nothing to take: a write transaction already excludes every other writer (one at a time)
    return this.run(() => {
      if (!this.db.inTransaction) {
        throw new AppError(500, 'store_lock_outside_tx', `lock '${name}' taken outside a transaction`);
      }
    });
  }

  // users
  createUser(u: Parameters<T.UserStore['createUser']>[0]): Promise<T.User> {
    return this.run((r) => r.users.createUser(u));
  }
  getUserByName(name: string): Promise<T.User | undefined> {
    return this.run((r) => r.users.getUserByName(name));
  }
  getUserById(id: number): Promise<T.User | undefined> {
    return this.run((r) => r.users.getUserById(id));
  }
  listUsers(): Promise<T.User[]> {
    return this.run((r) => r.users.listUsers());
  }
  updateUser(id: number, patch: Parameters<T.UserStore['updateUser']>[1]): Promise<T.User> {
    return this.run((r) => r.users.updateUser(id, patch));
  }

  // certificates
  insertCert(c: T.NewCert): Promise<T.CertRecord> {
    return this.run((r) => r.certs.insertCert(c));
  }
  getCert(serial: string): Promise<T.CertRecord | undefined> {
    return this.run((r) => r.certs.getCert(serial));
  }
  getValidCertByCommonName(commonName: string): Promise<T.CertRecord | undefined> {
    return this.run((r) => r.certs.getValidCertByCommonName(commonName));
  }
  listCerts(q?: T.CertQuery): Promise<{ total: number; items: T.CertRecord[]; nextCursor?: string }> {
    return this.run((r) => r.certs.listCerts(q));
  }
  listDeviceCerts(): Promise<T.DeviceCert[]> {
    return this.run((r) => r.certs.listDeviceCerts());
  }
  markRevoked(serial: string, reason: T.RevocationReason, at: Date): Promise<T.CertRecord> {
    return this.run((r) => r.certs.markRevoked(serial, reason, at));
  }
  listRevoked(): ReturnType<T.CertStore['listRevoked']> {
    return this.run((r) => r.certs.listRevoked());
  }
  touchLastSeen(serials: readonly string[], at: Date): Promise<void> {
    return this.run((r) => r.certs.touchLastSeen(serials, at));
  }
  markSuperseding(serial: string, newSerial: string, supersedeAt: Date): Promise<T.CertRecord> {
    return this.run((r) => r.certs.markSuperseding(serial, newSerial, supersedeAt));
  }
  listSupersedeDue(now: Date): Promise<string[]> {
    return this.run((r) => r.certs.listSupersedeDue(now));
  }
  assignIssuerKeyId(keyId: string): Promise<number> {
    return this.run((r) => r.certs.assignIssuerKeyId(keyId));
  }

  // CRL, settings, cluster
  getCrl(): Promise<T.CrlState | undefined> {
    return this.run((r) => r.state.getCrl());
  }
  saveCrl(state: T.CrlState): Promise<void> {
    return this.run((r) => r.state.saveCrl(state));
  }
  getSetting(key: string): Promise<string | undefined> {
    return this.run((r) => r.state.getSetting(key));
  }
  setSetting(key: string, value: string): Promise<void> {
    return this.run((r) => r.state.setSetting(key, value));
  }
  getClusterSnapshot(): Promise<T.ClusterSnapshot | undefined> {
    return this.run((r) => r.state.getClusterSnapshot());
  }
  saveClusterSnapshot(s: T.ClusterSnapshot): Promise<void> {
    return this.run((r) => r.state.saveClusterSnapshot(s));
  }

  // audit
  appendAudit(e: T.NewAuditEntry): Promise<T.AuditEntry> {
    return this.run((r) => r.audit.appendAudit(e));
  }
  listAudit(q?: Parameters<T.AuditStore['listAudit']>[0]): Promise<T.AuditEntry[]> {
    return this.run((r) => r.audit.listAudit(q));
  }
  countAudit(q?: Parameters<T.AuditStore['countAudit']>[0]): Promise<number> {
    return this.run((r) => r.audit.countAudit(q));
  }

  // sessions
  getSession(sid: string, now?: Date): Promise<T.SessionRecord | undefined> {
    return this.run((r) => r.sessions.getSession(sid, now));
  }
  setSession(sid: string, data: string, expiresAt: Date, userId?: number | null): Promise<void> {
    return this.run((r) => r.sessions.setSession(sid, data, expiresAt, userId));
  }
  destroySession(sid: string): Promise<void> {
    return this.run((r) => r.sessions.destroySession(sid));
  }
  destroySessionsOfUser(userId: number): Promise<number> {
    return this.run((r) => r.sessions.destroySessionsOfUser(userId));
  }
  pruneSessions(now: Date): Promise<number> {
    return this.run((r) => r.sessions.pruneSessions(now));
  }

  // API tokens
  createToken(t: Parameters<T.TokenStore['createToken']>[0]): Promise<T.ApiToken> {
    return this.run((r) => r.tokens.createToken(t));
  }
  findTokenByHash(tokenHash: string): Promise<T.ApiToken | undefined> {
    return this.run((r) => r.tokens.findTokenByHash(tokenHash));
  }
  getToken(id: number): Promise<T.ApiToken | undefined> {
    return this.run((r) => r.tokens.getToken(id));
  }
  listTokens(userId: number): Promise<T.ApiToken[]> {
    return this.run((r) => r.tokens.listTokens(userId));
  }
  listAllTokens(): Promise<T.ApiToken[]> {
    return this.run((r) => r.tokens.listAllTokens());
  }
  deleteToken(id: number): Promise<void> {
    return this.run((r) => r.tokens.deleteToken(id));
  }
  touchToken(id: number, at: Date): Promise<void> {
    return this.run((r) => r.tokens.touchToken(id, at));
  }

  // agent queue
  addPending(p: T.PendingRevocation): Promise<void> {
    return this.run((r) => r.pending.addPending(p));
  }
  listPending(): Promise<T.PendingRevocation[]> {
    return this.run((r) => r.pending.listPending());
  }
  clearPending(serials: readonly string[]): Promise<number> {
    return this.run((r) => r.pending.clearPending(serials));
  }

  // gateways
  upsertGateway(g: T.GatewayRecord): Promise<T.GatewayRecord> {
    return this.run((r) => r.gateways.upsertGateway(g));
  }
  getGateway(name: string): Promise<T.GatewayRecord | undefined> {
    return this.run((r) => r.gateways.getGateway(name));
  }
  listGateways(): Promise<T.GatewayRecord[]> {
    return this.run((r) => r.gateways.listGateways());
  }
  deleteGateway(name: string): Promise<void> {
    return this.run((r) => r.gateways.deleteGateway(name));
  }

  // single sign-on identities
  getOidcIdentity(issuer: string, subject: string): Promise<T.OidcIdentity | undefined> {
    return this.run((r) => r.oidc.getOidcIdentity(issuer, subject));
  }
  getOidcIdentityOfUser(userId: number): Promise<T.OidcIdentity | undefined> {
    return this.run((r) => r.oidc.getOidcIdentityOfUser(userId));
  }
  listOidcIdentities(issuer: string): Promise<T.OidcIdentity[]> {
    return this.run((r) => r.oidc.listOidcIdentities(issuer));
  }
  insertOidcIdentity(i: Parameters<T.OidcIdentityStore['insertOidcIdentity']>[0]): Promise<T.OidcIdentity> {
    return this.run((r) => r.oidc.insertOidcIdentity(i));
  }
  updateOidcIdentity(...args: Parameters<T.OidcIdentityStore['updateOidcIdentity']>): Promise<void> {
    return this.run((r) => r.oidc.updateOidcIdentity(...args));
  }

  // import links
  createImportLink(l: Parameters<T.ImportLinkStore['createImportLink']>[0]): Promise<T.ImportLink> {
    return this.run((r) => r.importLinks.createImportLink(l));
  }
  findImportLinkByHash(tokenHash: string): Promise<T.ImportLink | undefined> {
    return this.run((r) => r.importLinks.findImportLinkByHash(tokenHash));
  }
  claimImportLink(id: number, at: Date, ip: string): Promise<boolean> {
    return this.run((r) => r.importLinks.claimImportLink(id, at, ip));
  }
  releaseImportLink(id: number): Promise<void> {
    return this.run((r) => r.importLinks.releaseImportLink(id));
  }
  setImportLinkSerial(id: number, serial: string): Promise<void> {
    return this.run((r) => r.importLinks.setImportLinkSerial(id, serial));
  }
  pruneImportLinks(before: Date): Promise<number> {
    return this.run((r) => r.importLinks.pruneImportLinks(before));
  }

  // VPN session history
  recordSessions(replica: string, samples: readonly T.LiveSessionSample[], at: Date): Promise<void> {
    return this.run((r) => r.history.recordSessions(replica, samples, at));
  }
  listOpenSessions(replica: string): Promise<T.SessionHistoryRecord[]> {
    return this.run((r) => r.history.listOpenSessions(replica));
  }
  endSession(id: number, reason: T.SessionEndReason, endedAt?: Date): Promise<void> {
    return this.run((r) => r.history.endSession(id, reason, endedAt));
  }
  listSessionHistory(q?: T.SessionHistoryQuery): Promise<T.SessionHistoryRecord[]> {
    return this.run((r) => r.history.listSessionHistory(q));
  }
  usageByDay(since: Date, user?: string): Promise<T.UsageDay[]> {
    return this.run((r) => r.history.usageByDay(since, user));
  }
  pruneSessionHistory(before: Date): Promise<number> {
    return this.run((r) => r.history.pruneSessionHistory(before));
  }

  // tunnel addresses
  getAddress(commonName: string): Promise<T.DeviceAddress | undefined> {
    return this.run((r) => r.addresses.getAddress(commonName));
  }
  listAddresses(): Promise<T.DeviceAddress[]> {
    return this.run((r) => r.addresses.listAddresses());
  }
  allocateAddress(commonName: string, pool: T.AddressPool, at: Date): Promise<T.DeviceAddress> {
    return this.run((r) => r.addresses.allocateAddress(commonName, pool, at));
  }
  allocateAddresses(
    commonNames: readonly string[],
    pool: T.AddressPool,
    at: Date,
  ): Promise<T.BulkAllocation> {
    return this.run((r) => r.addresses.allocateAddresses(commonNames, pool, at));
  }
  releaseAddress(commonName: string): Promise<boolean> {
    return this.run((r) => r.addresses.releaseAddress(commonName));
  }

  // local groups
  createGroup(g: { name: string; description?: string }): Promise<T.LocalGroup> {
    return this.run((r) => r.groups.createGroup(g));
  }
  getGroup(name: string): Promise<T.LocalGroup | undefined> {
    return this.run((r) => r.groups.getGroup(name));
  }
  listGroups(): Promise<T.LocalGroup[]> {
    return this.run((r) => r.groups.listGroups());
  }
  deleteGroup(name: string): Promise<void> {
    return this.run((r) => r.groups.deleteGroup(name));
  }
  addGroupMember(group: string, userId: number): Promise<void> {
    return this.run((r) => r.groups.addGroupMember(group, userId));
  }
  removeGroupMember(group: string, userId: number): Promise<void> {
    return this.run((r) => r.groups.removeGroupMember(group, userId));
  }
  localGroupsOf(userId: number): Promise<string[]> {
    return this.run((r) => r.groups.localGroupsOf(userId));
  }

  // access rules and the bundle version
  listRules(): Promise<T.StoredRule[]> {
    return this.run((r) => r.rules.listRules());
  }
  getRule(name: string): Promise<T.StoredRule | undefined> {
    return this.run((r) => r.rules.getRule(name));
  }
  putRule(rule: AccessRule, position: number): Promise<boolean> {
    return this.run((r) => r.rules.putRule(rule, position));
  }
  deleteRule(name: string): Promise<void> {
    return this.run((r) => r.rules.deleteRule(name));
  }
  getAccessState(): Promise<T.AccessState> {
    return this.run((r) => r.rules.getAccessState());
  }
  bumpAccessVersion(): Promise<number> {
    return this.run((r) => r.rules.bumpAccessVersion());
  }
  raiseAccessVersion(version: number): Promise<number> {
    return this.run((r) => r.rules.raiseAccessVersion(version));
  }
  markAccessPublished(version: number, hash: string): Promise<void> {
    return this.run((r) => r.rules.markAccessPublished(version, hash));
  }
}

/**
 * The handle a transaction's function receives: its calls go straight to the connection, which the
 * transaction holds (the store's other callers wait). Refuses calls once its transaction has ended, so a
 * handle kept past the end (or a call not awaited) fails loudly. A nested `transaction` is a savepoint
 * with a handle of its own; nested transactions on one handle run one after the other.
 */
class SqliteTx extends SqliteOps {
  private open = true;
  private readonly nested = new AsyncMutex();

  constructor(
    db: Database.Database,
    repos: Repos,
    private readonly parent: SqliteTx | undefined,
    private readonly depth: number,
  ) {
    super(db, repos);
  }

  get active(): boolean {
    return this.open && (this.parent?.active ?? true);
  }

  end(): void {
    this.open = false;
  }

  protected run<R>(fn: (r: Repos) => R): Promise<R> {
    try {
      this.assertActive();
      return Promise.resolve(fn(this.repos));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  async transaction<R>(fn: (tx: T.TxStore) => Promise<R>): Promise<R> {
    this.assertActive();
    await this.nested.acquire();
    const name = `podgate_sp${this.depth + 1}`;
    const child = new SqliteTx(this.db, this.repos, this, this.depth + 1);
    try {
      this.assertActive();
      this.db.exec(`SAVEPOINT ${name}`);
      try {
        const result = await fn(child);
        this.db.exec(`RELEASE ${name}`);
        return result;
      } catch (err) {
        if (this.db.inTransaction) {
          this.db.exec(`ROLLBACK TO ${name}`);
          this.db.exec(`RELEASE ${name}`);
        }
        throw err;
      }
    } finally {
      child.end();
      this.nested.release();
    }
  }

  private assertActive(): void {
    if (!this.active) {
      throw new AppError(
        500,
        'store_tx_ended',
        'store call on a transaction handle after its transaction ended',
      );
    }
  }
}

/**
 * The SQLite implementation of every store interface, on one connection in WAL mode with foreign keys on.
 * Durability: `synchronous=FULL`, so a commit that returned survives a crash of the process or the machine
 * (writes are rare: issue, revoke, sign-in). Safe to open the same file from several processes (web + CLI).
 *
 * Concurrency in this process: a transaction spans awaits, so it holds the one connection through an
 * in-process mutex from BEGIN IMMEDIATE to COMMIT; calls on the store meanwhile wait their turn (first
 * come, first served). When no transaction is open a call runs at once (no queue, no extra tick).
 * Other processes are kept apart by SQLite's own locks (busy_timeout).
 */
export class SqliteStore extends SqliteOps implements T.Store {
  readonly file: string;
  readonly schemaVersion: number;
  private readonly writer = new AsyncMutex();
  /** The transaction whose function is running (to refuse, not deadlock on, a store call from inside it). */
  private readonly current = new AsyncLocalStorage<SqliteTx>();

  private constructor(file: string, db: Database.Database, options: OpenOptions) {
    const schemaVersion = migrate(db, options.migrations ?? allMigrations);
    super(db, new Repos(lazyStatements(db)));
    this.file = file;
    this.schemaVersion = schemaVersion;
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
      // Page cache per connection: better-sqlite3 builds with 16 MiB, which a busy `serve` fills with
      // pages it reads once (PEMs of list pages) and keeps for its lifetime. The hot pages (indexes, the
      // session and user rows) fit in 4 MiB; the OS page cache holds the rest.
      db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
      return new SqliteStore(path, db, options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  protected run<R>(fn: (r: Repos) => R): Promise<R> {
    if (!this.writer.locked) {
      try {
        return Promise.resolve(fn(this.repos));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    return this.runQueued(fn);
  }

  private async runQueued<R>(fn: (r: Repos) => R): Promise<R> {
    this.refuseInsideTransaction();
    await this.writer.acquire();
    try {
      return fn(this.repos);
    } finally {
      this.writer.release();
    }
  }

  /**
   * BEGIN IMMEDIATE, fn(tx), COMMIT; ROLLBACK when fn throws (or rejects). fn must make its store calls
   * on `tx`: a call on the store itself from inside fn is refused (it would wait for this transaction).
   */
  async transaction<R>(fn: (tx: T.TxStore) => Promise<R>): Promise<R> {
    this.refuseInsideTransaction();
    if (!this.writer.tryAcquire()) await this.writer.acquire();
    const tx = new SqliteTx(this.db, this.repos, undefined, 0);
    try {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await this.current.run(tx, () => fn(tx));
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    } finally {
      tx.end();
      this.writer.release();
    }
  }

  /** Waits for an open transaction to end, then closes the connection (idempotent). */
  async close(): Promise<void> {
    this.refuseInsideTransaction();
    await this.writer.acquire();
    try {
      if (this.db.open) this.db.close();
    } finally {
      this.writer.release();
    }
  }

  private refuseInsideTransaction(): void {
    if (this.current.getStore()?.active) {
      throw new AppError(
        500,
        'store_in_tx',
        'store call made on the store inside one of its transactions: use the transaction handle',
      );
    }
  }
}
