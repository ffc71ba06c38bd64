/**
 * The agent core beside a running openvpn. A revocation becomes effective in this order: verify the
 * CRL against the CA, write it atomically where openvpn's crl-verify reads it (openvpn re-reads it on
 * every new connection), THEN kill the live sessions of newly revoked certificates over the management
 * interface, and report back. The order matters: a session killed before the new CRL is in place
 * reconnects on the old one.
 *
 * Used in local mode (`podgate server run`, bundles from a file) and in cluster mode (bundles from a
 * Secret watch): the bundle source and the reporter are injected.
 */
import { readFileSync, statSync } from 'node:fs';
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { verifyCrl, type CrlInfo } from '../pki/index.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { ManagementCommandFailed, type ManagementApi } from './management-client.js';
import type { RevocationBundle, RevokedCertInfo } from './revocation-bundle.js';
import { sessionsOf } from './status.js';

const log = logger.child({ module: 'agent' });

/**
 * Why a CRL was not put in force: it does not verify against the CA (another issuer, bad signature,
 * expired), it is older than the CRL in force, it differs from the CRL in force under the same number,
 * or the bundle names another CRL number than the CRL it carries.
 */
export type CrlRefusal = 'unverified' | 'older' | 'conflicting' | 'mismatched-bundle';

/** The agent refused a CRL; the file openvpn reads was not touched. */
export class CrlRefused extends AppError {
  constructor(
    readonly refusal: CrlRefusal,
    status: number,
    code: string,
    message: string,
    cause?: unknown,
  ) {
    super(status, code, message, { field: 'crl', cause });
  }
}

export interface KilledSession {
  commonName: string;
  clientId: number;
  realAddress: string;
  /** false for common names that were re-issued: that client reconnects, the revoked one fails. */
  halt: boolean;
}

export interface AppliedReport {
  crlNumber: number;
  appliedAt: Date;
  /** Revocations that became effective with this application (CRL in place, sessions gone). */
  revoked: RevokedCertInfo[];
  killed: KilledSession[];
}

export interface PendingReport {
  crlNumber: number;
  /** The CRL is in place (new connections are refused) but these live sessions could not be killed yet. */
  revoked: RevokedCertInfo[];
  queuedAt: Date;
  error: string;
}

/** Where the agent reports; local mode writes audit rows, cluster mode may also annotate the Secret. */
export interface AgentReporter {
  applied(r: AppliedReport): void | Promise<void>;
  pending(p: PendingReport): void | Promise<void>;
}

export interface AgentDeps {
  caCertPem: string;
  /** The file openvpn's `crl-verify` reads. */
  crlFile: string;
  /** Opens a management session; the agent closes it after each use (openvpn serves one client at a time). */
  connect: () => Promise<ManagementApi>;
  reporter: AgentReporter;
  now?: () => Date;
  /** Backoff for retries while the management interface is down. Default 200 ms doubling to 5 s. */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

export interface ApplyResult {
  crlNumber: number;
  /** false when the bundle was the CRL already in place and nothing was left to do. */
  changed: boolean;
  killed: KilledSession[];
  pending: boolean;
}

/** Applies revocation bundles one at a time, in order; safe to call from a watcher and a poller. */
export class RevocationAgent {
  /** The CRL in crlFile and since when (ms) openvpn checks every new connection against it. */
  private current: { number: number; pem: string; since: number } | undefined;
  /** Serials whose sessions are already gone (or never existed) since this agent started. */
  private readonly handled = new Set<string>();
  private readonly reportedPending = new Set<string>();
  private latest: RevocationBundle | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private stopped = false;

  constructor(private readonly deps: AgentDeps) {
    this.retryDelay = deps.retryInitialMs ?? 200;
    this.current = this.readCurrent();
  }

  /** The CRL number in force (the one in `crlFile`), if any. */
  get crlNumber(): number | undefined {
    return this.current?.number;
  }

  /** True while some sessions of revoked certificates could not be killed yet. */
  get hasPending(): boolean {
    return this.retryTimer !== undefined;
  }

  /**
   * Verifies and applies a bundle. Throws CrlRefused (and changes nothing) when the CRL is from another
   * issuer, expired, badly signed, or older than the one in force. A management failure does not throw:
   * it is reported as pending and retried with backoff.
   */
  apply(bundle: RevocationBundle): Promise<ApplyResult> {
    const run = () => this.applyNow(bundle);
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * For a start before openvpn runs: verifies and writes the CRL like `apply`, and marks every revocation
   * it lists as handled without contacting openvpn (no session can exist yet). Returns the CRL number.
   */
  prime(bundle: RevocationBundle): number {
    const { info } = this.putInForce(bundle);
    for (const s of info.revokedSerials) this.handled.add(s.toUpperCase());
    return info.number;
  }

  /** Stops retrying; an apply in flight finishes. */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  private readCurrent(): { number: number; pem: string; since: number } | undefined {
    let pem: string;
    let since: number;
    try {
      pem = readFileSync(this.deps.crlFile, 'utf8');
      since = statSync(this.deps.crlFile).mtimeMs;
    } catch {
      return undefined;
    }
    try {
      return { number: this.verify(pem).number, pem, since };
    } catch (err) {
      log.warn({ err, file: this.deps.crlFile }, 'CRL in place does not verify; it will be replaced');
      return undefined;
    }
  }

  /**
   * Verifies a CRL against the CA this agent trusts. Throws CrlRefused('unverified') carrying the
   * reason the CRL does not verify.
   */
  private verify(crlPem: string): CrlInfo {
    try {
      return verifyCrl(crlPem, this.deps.caCertPem, this.now());
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      throw new CrlRefused('unverified', err.status, err.code, err.message, err);
    }
  }

  /**
   * The one way a CRL reaches crlFile (for `prime` and `apply`): verify it, refuse it when it is older
   * than the CRL in force or differs from it under the same number, then write it atomically. Throws
   * CrlRefused and writes nothing on any refusal. `changed` is false when it already was in force.
   */
  private putInForce(bundle: RevocationBundle): { info: CrlInfo; changed: boolean } {
    const info = this.verify(bundle.crlPem);
    if (info.number !== bundle.crlNumber) {
      throw new CrlRefused(
        'mismatched-bundle',
        400,
        'bundle_invalid',
        `bundle says CRL number ${bundle.crlNumber} but the CRL is number ${info.number}`,
      );
    }
    const cur = this.current;
    if (cur && info.number < cur.number) {
      const message = `CRL number ${info.number} is older than the one in force (${cur.number}); refused`;
      throw new CrlRefused('older', 409, 'conflict', message);
    }
    if (cur && info.number === cur.number && bundle.crlPem.trim() !== cur.pem.trim()) {
      const message = `a different CRL with the same number ${info.number} is already in force; refused`;
      throw new CrlRefused('conflicting', 409, 'conflict', message);
    }
    const changed = !cur || info.number > cur.number;
    if (changed) {
      const pem = bundle.crlPem.endsWith('\n') ? bundle.crlPem : `${bundle.crlPem}\n`;
      // Not fsynced: it sits between the publish and the kills, and the agent writes it again from its
      // source (the store's bundle in `server run`, the Secret in the pod) before openvpn starts.
      writeFileAtomic(this.deps.crlFile, pem, 0o644, { durable: false });
      this.current = { number: info.number, pem: bundle.crlPem, since: Date.now() };
      log.info({ crlNumber: info.number, revoked: info.revokedSerials.length }, 'CRL in force');
    }
    return { info, changed };
  }

  private async applyNow(bundle: RevocationBundle): Promise<ApplyResult> {
    // The CRL must be in force before any session is killed.
    const { info, changed } = this.putInForce(bundle);
    // Only revocations the signed CRL confirms count; the rest of the bundle is a hint for finding sessions.
    const inCrl = new Set(info.revokedSerials.map((s) => s.toUpperCase()));
    this.latest = { ...bundle, revoked: bundle.revoked.filter((r) => inCrl.has(r.serial.toUpperCase())) };
    const result = await this.killPending();
    return { crlNumber: info.number, changed: changed || result.killed.length > 0, ...result };
  }

  /** Kills the sessions of revocations not handled yet; on failure reports pending and schedules a retry. */
  private async killPending(): Promise<{ killed: KilledSession[]; pending: boolean }> {
    const bundle = this.latest;
    if (!bundle) return { killed: [], pending: false };
    const todo = bundle.revoked.filter((r) => !this.handled.has(r.serial.toUpperCase()));
    if (todo.length === 0) return { killed: [], pending: false };
    const reissued = new Set(bundle.reissuedCommonNames);
    let killed: KilledSession[];
    try {
      killed = await this.killSessions(todo, reissued);
    } catch (err) {
      const error = (err as Error).message;
      // Report (and log loudly) each revocation as pending once, not on every retry.
      const fresh = todo.filter((r) => !this.reportedPending.has(r.serial.toUpperCase()));
      if (fresh.length > 0)
        log.warn(
          { error, crlNumber: bundle.crlNumber, pending: todo.length },
          'management interface unavailable; revocation pending',
        );
      else log.debug({ error }, 'management interface still unavailable');
      for (const r of fresh) this.reportedPending.add(r.serial.toUpperCase());
      if (fresh.length > 0) {
        await this.report(() =>
          this.deps.reporter.pending({
            crlNumber: bundle.crlNumber,
            revoked: fresh,
            queuedAt: this.now(),
            error,
          }),
        );
      }
      this.scheduleRetry();
      return { killed: [], pending: true };
    }
    for (const r of todo) {
      this.handled.add(r.serial.toUpperCase());
      this.reportedPending.delete(r.serial.toUpperCase());
    }
    this.retryDelay = this.deps.retryInitialMs ?? 200;
    const appliedAt = this.now();
    log.info(
      { crlNumber: bundle.crlNumber, killed: killed.length, revoked: todo.map((r) => r.serial) },
      'revocations effective',
    );
    await this.report(() =>
      this.deps.reporter.applied({ crlNumber: bundle.crlNumber, appliedAt, revoked: todo, killed }),
    );
    return { killed, pending: false };
  }

  private async killSessions(
    todo: readonly RevokedCertInfo[],
    reissued: ReadonlySet<string>,
  ): Promise<KilledSession[]> {
    const m = await this.deps.connect();
    try {
      const status = await m.status();
      const killed: KilledSession[] = [];
      const names = new Set(todo.map((r) => r.commonName));
      for (const cn of names) {
        const halt = !reissued.has(cn);
        // A session that began after this CRL was in force passed its check (openvpn reads crl-verify on
        // every new connection): it is a valid certificate, e.g. a re-issued device. This matters when the
        // agent restarts beside a running openvpn. status 3 has whole seconds, hence the margin.
        const checkedAfter = (this.current?.since ?? Infinity) + 1000;
        for (const s of sessionsOf(status, cn).filter((x) => !(x.connectedSince.getTime() > checkedAfter))) {
          try {
            await m.clientKill(s.clientId, halt);
            killed.push({ commonName: cn, clientId: s.clientId, realAddress: s.realAddress, halt });
          } catch (err) {
            // openvpn answered ERROR: the session ended between `status` and `client-kill`, nothing left
            // to do for it. A broken connection is another error and leaves the revocation pending.
            if (!(err instanceof ManagementCommandFailed && err.command === 'client-kill')) throw err;
          }
        }
      }
      return killed;
    } finally {
      m.close();
    }
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.deps.retryMaxMs ?? 5000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const run = () => this.killPending();
      this.chain = this.chain.then(run, run).catch((err: unknown) => log.error({ err }, 'retry failed'));
    }, delay);
    this.retryTimer.unref?.();
  }

  private async report(fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      // A reporting failure must not undo or block the revocation itself.
      log.error({ err }, 'agent reporter failed');
    }
  }
}
