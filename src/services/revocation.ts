import { BadRequest, Conflict, NotFound } from '../lib/errors.js';
import { REVOCATION_REASONS } from '../lib/cert-vocabulary.js';
import { logger } from '../lib/logger.js';
import { parseSerial } from '../lib/serial.js';
import type { CertRecord, CrlState, RevocationReason, Store, TxStore } from '../store/types.js';
import type { CrlPublisher, RevocationBundle } from '../openvpn/revocation-bundle.js';
import type { CaSet } from './ca-set.js';

const log = logger.child({ module: 'revocation' });
const DAY = 86_400_000;
/** thisUpdate is set this far before the signing time: a server clock running behind still accepts it. */
const BACKDATE_MS = 5 * 60_000;

/** A publisher that did not take the current CRL bundle (the API server unreachable, a refused write). */
export interface PublishFailure {
  publisher: string;
  error: string;
}

export { REVOCATION_REASONS };
/** CRLs are re-signed when fewer than this many days remain, and at least daily. */
export const CRL_RENEW_BEFORE_DAYS = 7;
/** How many recent revocations the bundle names for the agent (a k8s Secret holds at most 1 MiB). */
export const BUNDLE_RECENT_LIMIT = 1000;
/**
 * A revoked certificate leaves the CRL this long after it expired. OpenVPN refuses an expired certificate
 * by itself, so listing it only makes the CRL (and the Kubernetes Secret holding it) bigger; the day of
 * margin covers a server clock that runs behind the CA's.
 */
export const CRL_KEEP_AFTER_EXPIRY_MS = DAY;

export function parseReason(value: unknown): RevocationReason {
  if (value === undefined || value === null || value === '') return 'unspecified';
  if (typeof value !== 'string' || !REVOCATION_REASONS.includes(value as RevocationReason)) {
    throw new BadRequest(`reason must be one of ${REVOCATION_REASONS.join(', ')}`, 'reason');
  }
  return value as RevocationReason;
}

interface RevokedRow {
  serial: string;
  commonName: string;
  notAfter: Date;
  issuerKeyId: string | null;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface RevocationServiceDeps {
  store: Store;
  /**
   * The CAs in force (the outgoing one during a rotation's overlap gets a CRL of its own), read again
   * before every CRL is signed: another process may have rotated them.
   */
  cas: CaSet;
  crlDays: number;
  /** ensureFreshCrl re-signs a CRL older than this (default a day: vpn.crlRefreshSeconds). */
  refreshMs?: number;
  publishers: CrlPublisher[];
  now: () => Date;
}

/**
 * Revocation in a fixed order: mark revoked and re-sign the CRL in one store transaction
 * (so a crash never leaves a CRL that disagrees with the rows), then publish the bundle to every
 * publisher (file for the local agent, Secret for the pod). The agent makes it effective.
 */
export class RevocationService {
  /**
   * Revoked rows as of the CRL `crlNumber` with exactly the text `crlPem`, oldest first. Every revocation
   * signs a new CRL in the same transaction, so a stored CRL that is this one proves the cache current
   * even with other processes (CLI, other replicas) writing the same store; otherwise it is reloaded.
   * The number alone proves nothing: the cache is filled inside a transaction that may still roll back
   * (a caller's transaction failing after the revocation), and then another writer commits a different
   * CRL under the same number. The PEM carries the signed entry list and thisUpdate, so it tells them apart.
   */
  private revokedCache: { crlNumber: number; crlPem: string; rows: RevokedRow[] } | undefined;

  constructor(private readonly deps: RevocationServiceDeps) {}

  /** Every revoked row, oldest first, from the cache when it is current (read through `store`: a transaction's handle, or the store). */
  private async revokedRows(store: TxStore = this.deps.store): Promise<RevokedRow[]> {
    const crl = await store.getCrl();
    const number = crl?.number ?? 0;
    const pem = crl?.pem ?? '';
    if (this.revokedCache?.crlNumber !== number || this.revokedCache.crlPem !== pem) {
      const rows = (await store.listRevoked())
        .map((r) => ({
          serial: r.serial,
          commonName: r.commonName,
          notAfter: r.notAfter,
          issuerKeyId: r.issuerKeyId,
          revokedAt: r.revokedAt!,
          reason: r.revocationReason!,
        }))
        .sort((a, b) => a.revokedAt.getTime() - b.revokedAt.getTime());
      this.revokedCache = { crlNumber: number, crlPem: pem, rows };
    }
    return this.revokedCache.rows;
  }

  /**
   * Brings the CA set up to date (another replica may have rotated it). Callers that pass their own
   * transaction to revokeInTransaction call this before they open it.
   */
  async syncCas(): Promise<void> {
    await this.deps.cas.sync();
  }

  /** Finds a certificate by serial (any common spelling) or by the common name of its valid certificate. */
  async resolve(serialOrName: string): Promise<CertRecord> {
    const { store } = this.deps;
    if (typeof serialOrName !== 'string' || serialOrName === '')
      throw new BadRequest('certificate name or serial is required', 'certificate');
    const serial = parseSerial(serialOrName);
    const bySerial = serial ? await store.getCert(serial) : undefined;
    if (bySerial) return bySerial;
    const byName = await store.getValidCertByCommonName(serialOrName);
    if (byName) return byName;
    throw new NotFound(`no valid certificate with serial or name '${serialOrName}'`);
  }

  async revoke(o: {
    actor: string;
    serialOrName: string;
    reason?: unknown;
  }): Promise<{ cert: CertRecord; crl: CrlState; unpublished: PublishFailure[] }> {
    const reason = parseReason(o.reason);
    await this.deps.cas.sync();
    const cert = await this.resolve(o.serialOrName);
    if (cert.status === 'revoked')
      throw new Conflict(`certificate ${cert.serial} (${cert.commonName}) is already revoked`, 'certificate');
    const { cert: revoked, crl } = await this.revokeInTransaction(o.actor, [cert.serial], reason);
    const unpublished = await this.publish();
    return { cert: revoked[0]!, crl, unpublished };
  }

  /** Revokes several certificates with a single CRL update (used when a user is disabled). */
  async revokeMany(o: {
    actor: string;
    serials: readonly string[];
    reason: RevocationReason;
  }): Promise<CrlState> {
    await this.deps.cas.sync();
    const { crl } = await this.revokeInTransaction(o.actor, o.serials, o.reason);
    await this.publish();
    return crl;
  }

  /**
   * Marks the serials revoked and signs the next CRL in one store transaction (a savepoint when the
   * caller passes its transaction handle as `store`, so the revocation commits or rolls back with the
   * caller's writes). Call publish() after the outermost transaction has committed.
   */
  revokeInTransaction(
    actor: string,
    serials: readonly string[],
    reason: RevocationReason,
    store: TxStore = this.deps.store,
  ): Promise<{ cert: CertRecord[]; crl: CrlState }> {
    const now = this.deps.now();
    return store.transaction(async (tx) => {
      const known = await this.revokedRows(tx);
      const cert: CertRecord[] = [];
      for (const serial of serials) {
        const c = await tx.markRevoked(serial, reason, now);
        await tx.appendAudit({
          actor,
          action: 'cert.revoke',
          target: c.commonName,
          result: 'ok',
          details: { serial: c.serial, reason, owner: c.ownerName },
        });
        cert.push(c);
      }
      const rows = [
        ...known,
        ...cert.map((c) => ({
          serial: c.serial,
          commonName: c.commonName,
          notAfter: c.notAfter,
          issuerKeyId: c.issuerKeyId,
          revokedAt: c.revokedAt!,
          reason,
        })),
      ];
      const crl = await this.rebuildCrl(tx, now, rows);
      log.info({ serials, reason, crlNumber: crl.number }, 'revoked');
      return { cert, crl };
    });
  }

  /**
   * Signs CRL number n+1 over `rows` (every revoked row) minus those expired more than
   * CRL_KEEP_AFTER_EXPIRY_MS ago; callers hold the store transaction (and called `cas.sync()` before
   * taking it: the sync may need a connection of its own, which a full pool would never give).
   */
  private async rebuildCrl(tx: TxStore, now: Date, given?: RevokedRow[], floor = 0): Promise<CrlState> {
    const { cas, crlDays } = this.deps;
    const rows = given ?? (await this.revokedRows(tx));
    cas.refresh();
    const ca = cas.current;
    const number = Math.max(((await tx.getCrl())?.number ?? 0) + 1, floor);
    const cutoff = now.getTime() - CRL_KEEP_AFTER_EXPIRY_MS;
    const live = rows.filter((r) => r.notAfter.getTime() > cutoff);
    const previous = cas.previous;
    // One CRL per trusted CA, each listing what that CA issued (openvpn reads every CRL in the file).
    // Certificates of a retired CA are left out: the server no longer trusts that CA at all.
    const mine = live.filter((r) => r.issuerKeyId === null || r.issuerKeyId === ca.keyId);
    let pem = ca.buildCrl({ number, entries: mine, nextUpdateDays: crlDays, now });
    if (previous) {
      const theirs = live.filter((r) => r.issuerKeyId === previous.keyId);
      pem += previous.buildCrl({ number, entries: theirs, nextUpdateDays: crlDays, now });
    }
    const state: CrlState = {
      number,
      pem,
      thisUpdate: new Date(now.getTime() - BACKDATE_MS),
      nextUpdate: new Date(now.getTime() + crlDays * DAY),
    };
    await tx.saveCrl(state);
    this.revokedCache = { crlNumber: number, crlPem: pem, rows };
    return state;
  }

  /**
   * Revokes, as `superseded`, renewed certificates whose grace period has ended (one CRL for all of them).
   * Listed inside the transaction, so two processes sweeping at once revoke each certificate once.
   */
  private async supersedeDue(now: Date): Promise<CrlState | undefined> {
    const { store } = this.deps;
    // A plain read first: the timers ask hourly and there is usually nothing due.
    if ((await store.listSupersedeDue(now)).length === 0) return undefined;
    return store.transaction(async (tx) => {
      const due = await tx.listSupersedeDue(now);
      return due.length === 0
        ? undefined
        : (await this.revokeInTransaction('system', due, 'superseded', tx)).crl;
    });
  }

  /**
   * The current CRL; a new one is signed when none exists, it is older than a day, or expires within 7
   * days, and whenever a renewed certificate's grace period has ended (it is revoked as superseded).
   */
  async ensureFreshCrl(): Promise<CrlState> {
    const { store } = this.deps;
    const now = this.deps.now();
    await this.deps.cas.sync(); // another replica may have rotated the CA: sign with the set in force
    const superseded = await this.supersedeDue(now);
    if (superseded) {
      await this.publish();
      return superseded;
    }
    const current = await store.getCrl();
    const stale =
      !current ||
      current.nextUpdate.getTime() - now.getTime() < CRL_RENEW_BEFORE_DAYS * DAY ||
      this.olderThanRefresh(current, now) ||
      // signed while the clock ran ahead, then set back: openvpn refuses a CRL whose thisUpdate is in
      // the future (every client), and the age test above would wait out the whole difference
      current.thisUpdate.getTime() > now.getTime();
    if (!stale) return current;
    const crl = await store.transaction((tx) => this.rebuildCrl(tx, now));
    await store.appendAudit({
      actor: 'system',
      action: 'crl.resign',
      target: `crl#${crl.number}`,
      result: 'ok',
      details: {},
    });
    log.info({ crlNumber: crl.number }, 'CRL re-signed');
    await this.publish();
    return crl;
  }

  /**
   * A day since thisUpdate by default; with `refreshMs`, that long since it was signed (thisUpdate is
   * backdated by BACKDATE_MS for clocks that run behind).
   */
  private olderThanRefresh(current: CrlState, now: Date): boolean {
    const age = now.getTime() - current.thisUpdate.getTime();
    const { refreshMs } = this.deps;
    return refreshMs === undefined ? age > DAY : age - BACKDATE_MS > refreshMs;
  }

  /**
   * Re-signs the CRL (one per CA in force, the expiry cut-off applied, like every rebuild) as number
   * `above + 1` when the current one is not above `above`; returns it, or undefined when nothing was
   * needed. For restore: the VPN server refuses a CRL numbered below the one it holds. Not published.
   */
  async resignAbove(above: number): Promise<CrlState | undefined> {
    const { store } = this.deps;
    await this.deps.cas.sync();
    return store.transaction(async (tx) => {
      const current = await tx.getCrl();
      if (current && current.number > above) return undefined;
      return this.rebuildCrl(tx, this.deps.now(), undefined, above + 1);
    });
  }

  /** Signs and publishes a new CRL now (after a CA rotation or retirement changes the set of CAs). */
  async resign(actor: string): Promise<CrlState> {
    await this.deps.cas.sync();
    const crl = await this.deps.store.transaction((tx) => this.rebuildCrl(tx, this.deps.now()));
    await this.deps.store.appendAudit({
      actor,
      action: 'crl.resign',
      target: `crl#${crl.number}`,
      result: 'ok',
      details: { cas: this.deps.cas.previous ? 2 : 1 },
    });
    await this.publish();
    return crl;
  }

  currentCrl(): Promise<CrlState | undefined> {
    return this.deps.store.getCrl();
  }

  /** What the agent needs: the CRL and the recent revocations with their common names. */
  async bundle(): Promise<RevocationBundle> {
    const { store } = this.deps;
    const crl = await store.getCrl();
    if (!crl) throw new NotFound('no CRL has been signed yet');
    const recent = (await this.revokedRows()).slice(-BUNDLE_RECENT_LIMIT).reverse();
    const reissued = new Set<string>();
    for (const r of recent)
      if (await store.getValidCertByCommonName(r.commonName)) reissued.add(r.commonName);
    return {
      crlNumber: crl.number,
      crlPem: crl.pem,
      revoked: recent.map((r) => ({
        serial: r.serial,
        commonName: r.commonName,
        revokedAt: r.revokedAt.toISOString(),
      })),
      reissuedCommonNames: [...reissued].sort(),
    };
  }

  /**
   * Sends the current bundle to every publisher; a failing publisher is logged and audited, not fatal:
   * the revocation is committed either way. Returns the publishers that failed, so that a caller who
   * reports "published" (the CLI) can say it was not.
   */
  async publish(): Promise<PublishFailure[]> {
    const failures: PublishFailure[] = [];
    if (this.deps.publishers.length === 0) return failures;
    const bundle = await this.bundle();
    for (const p of this.deps.publishers) {
      try {
        await p.publish(bundle);
      } catch (err) {
        // Refused for a higher number of the same CA: another publisher of this store was faster (fine),
        // unless this store never reached that number (restored from an older backup): an error.
        const newer = (err as { newerCrlNumber?: unknown }).newerCrlNumber;
        if (typeof newer === 'number' && ((await this.deps.store.getCrl())?.number ?? 0) >= newer) {
          log.debug(
            { publisher: p.name, crlNumber: bundle.crlNumber, newer },
            'a newer CRL was published meanwhile',
          );
          continue;
        }
        log.error({ err, publisher: p.name, crlNumber: bundle.crlNumber }, 'CRL publish failed');
        failures.push({ publisher: p.name, error: (err as Error).message });
        await this.deps.store.appendAudit({
          actor: 'system',
          action: 'crl.publish',
          target: p.name,
          result: 'error',
          details: { crlNumber: bundle.crlNumber, error: (err as Error).message },
        });
      }
    }
    return failures;
  }

  /** Adds a publisher unless one with the same name is already there (the local file one is added twice otherwise). */
  addPublisher(p: CrlPublisher): void {
    if (!this.deps.publishers.some((q) => q.name === p.name)) this.deps.publishers.push(p);
  }
}
