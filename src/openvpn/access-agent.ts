/**
 * The access agent: the consumer of published AccessBundles beside each openvpn server. It keeps
 * - the `client-config-dir` (one file per allowed device with its stable address; `ccd-exclusive`
 *   refuses every other device at connect),
 * - the nftables table (access/compile → access/nft-script → `nft -f -`), element by element as the
 *   cluster changes,
 * and ends live sessions of devices a bundle no longer lists (`client-kill … HALT`, after the file is gone).
 *
 * Fail closed: a bundle that does not parse or compile, or an nft transaction the kernel refuses, leaves
 * the last good state in force (said in status() and the log); with nothing good yet, DNS only. A restart
 * never opens anything: an existing table is left as it is until the new state is complete (bundle read,
 * and with a cluster source its first full list done), then replaced in one transaction.
 */
import { logger } from '../lib/logger.js';
import { AccessCompiler, mergeDeltas, type CompileDelta } from '../access/compile.js';
import type { AccessBundle, AccessMode, ClusterEvent, ClusterObjectSource } from '../access/types.js';
import type { ManagementApi } from './management-client.js';
import type { Enforcer } from './nft-enforcer.js';
import type { CcdSyncResult } from './client-config-dir.js';
import { HANDSHAKING } from './status.js';
import type { NeighbourCache } from './neighbours.js';
import { AddressHolders } from '../access/address-holders.js';

const log = logger.child({ module: 'access-agent' });

/** A live session ended because its device left the bundle (or changed address). */
export interface AccessKill {
  commonName: string;
  clientId: number;
  realAddress: string;
  reason: 'not-allowed' | 'readdressed';
  halt: boolean;
}

/** Where the agent reports kills (local mode: audit rows; cluster mode: the status ConfigMap). */
export interface AccessReporter {
  sessionsEnded(r: { version: number; at: Date; kills: AccessKill[] }): void | Promise<void>;
}

export interface AccessAgentDeps {
  enforcer: Enforcer;
  /** The client-config-dir keeper; without it the agent only filters (identity left to openvpn's pool). */
  ccd?: { sync(clients: AccessBundle['clients']): CcdSyncResult };
  /** Opens a management session (closed after use); without it no session is killed. */
  connect?: () => Promise<ManagementApi>;
  reporter?: AccessReporter;
  /** Live Namespaces/Pods/Services; without it only `cidr` destinations resolve. */
  cluster?: ClusterObjectSource;
  /**
   * Dual stack: the IPv6 tunnel addresses that go with rules' IPv4 client addresses
   * (`TunnelSubnets.withIpv6`), so a rule applies to a device's traffic of both families.
   */
  clientsWithIpv6?: (ipv4: readonly string[]) => string[];
  /** Cluster DNS addresses (IPv4 and IPv6): always reachable (udp+tcp 53). */
  dnsServers: string[];
  /** The mode before any bundle arrived: `enforce` installs DNS only, `open` accepts all. */
  modeWithoutBundle: AccessMode;
  /** Interface (or nftables wildcard) openvpn's clients arrive on. Default "tun*". */
  tun?: string;
  /**
   * The server pod's neighbour cache: entries of pod addresses that another pod took over are dropped
   * (access/address-holders.ts says why). Absent: left to age out.
   */
  neighbours?: NeighbourCache;
  /** How long cluster events are gathered into one transaction. Default 20 ms. */
  batchMs?: number;
  /** Retry of a full table replacement after the kernel refused a change. Default 2 s. */
  retryMs?: number;
}

export type AccessState =
  /** Nothing compiled yet: DNS only (enforce) / accept all (open), or the table a previous run left. */
  | 'no-bundle'
  /** A bundle is read; the cluster's first full list has not finished: the previous table stays. */
  | 'waiting-for-cluster'
  /** The bundle in force is installed. */
  | 'applied'
  /** The last change could not be installed; the last good table stays in force. */
  | 'stale';

export interface AccessStatus {
  state: AccessState;
  mode: AccessMode;
  version: number | null;
  appliedAt: string | null;
  lastError: string | null;
  rules: number;
  elements: number;
  /** Whole-table replacements so far (first load, mode changes, recoveries); the rest were deltas. */
  replacements: number;
}

export interface BundleResult {
  applied: boolean;
  /** Why not, when applied is false. */
  reason?: 'older' | 'unchanged' | 'invalid' | 'install-failed';
  kills: AccessKill[];
}

export class AccessAgent {
  private compiler = new AccessCompiler();
  private bundle: AccessBundle | undefined;
  private installedMode: AccessMode | undefined;
  /** True once the table holds the compiled state (replace done); deltas apply only then. */
  private installed = false;
  private clusterReady: boolean;
  private state: AccessState = 'no-bundle';
  private lastError: string | null = null;
  private appliedAt: Date | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private pendingEvents: CompileDelta[] = [];
  private readonly holders = new AddressHolders();
  /** Pod addresses taken over by another pod since the last flush (their neighbour entries go). */
  private pendingTaken: string[] = [];
  private batchTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private replacements = 0;

  constructor(private readonly d: AccessAgentDeps) {
    this.clusterReady = d.cluster === undefined;
  }

  /**
   * Installs the base table when none exists (DNS only in `enforce`, accept-all in `open`); an existing
   * one (left by a previous run) stays untouched until a complete new state replaces it. Starts the
   * cluster source.
   */
  async start(): Promise<void> {
    await this.serial(async () => {
      if (!(await this.d.enforcer.exists())) {
        await this.d.enforcer.replace(this.spec(this.d.modeWithoutBundle, false));
        this.installedMode = this.d.modeWithoutBundle;
        log.info({ mode: this.d.modeWithoutBundle }, 'no access table yet: base table installed');
      } else log.info('access table of a previous run kept until the new state is ready');
    });
    this.d.cluster?.start((e) => this.onEvent(e));
  }

  /**
   * Applies a published bundle (from `access.json` or the `podgate-access` Secret, already parsed with
   * parseAccessBundle). Older versions are refused; calls are serialised.
   */
  applyBundle(bundle: AccessBundle): Promise<BundleResult> {
    return this.serial(() => this.applyNow(bundle));
  }

  /** Records a bundle that could not even be parsed: the last good state stays, status says so. */
  rejectBundle(err: unknown): void {
    this.fail(`bundle refused: ${errText(err)}`);
  }

  status(): AccessStatus {
    const c = this.compiler.counts;
    return {
      state: this.state,
      mode: this.bundle?.mode ?? this.d.modeWithoutBundle,
      version: this.bundle?.version ?? null,
      appliedAt: this.appliedAt?.toISOString() ?? null,
      lastError: this.lastError,
      rules: c.rules,
      elements: c.elements,
      replacements: this.replacements,
    };
  }

  /** Packets dropped by the policy on this server (one number: bounded cardinality for /metrics). */
  droppedPackets(): Promise<number> {
    return this.d.enforcer.dropped();
  }

  /** Resolves when every queued change has been handled (tests, benchmarks). */
  async settled(): Promise<void> {
    if (this.batchTimer) {
      clearTimeout(this.batchTimer);
      this.batchTimer = undefined;
      void this.serial(() => this.flushEvents());
    }
    await this.queue;
  }

  /** Stops the cluster source and timers. The table and the files stay (they must outlive the agent). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.d.cluster?.stop();
    await this.queue.catch(() => undefined);
  }

  private async applyNow(bundle: AccessBundle): Promise<BundleResult> {
    const prev = this.bundle;
    if (prev && bundle.version < prev.version) {
      log.warn({ version: bundle.version, inForce: prev.version }, 'older access bundle ignored');
      return { applied: false, reason: 'older', kills: [] };
    }
    if (prev && bundle.version === prev.version && this.state === 'applied')
      return { applied: false, reason: 'unchanged', kills: [] };
    await this.flushEvents();
    let delta: CompileDelta;
    try {
      const widen = this.d.clientsWithIpv6;
      delta = this.compiler.setRules(
        widen ? bundle.rules.map((r) => ({ ...r, clients: widen(r.clients) })) : bundle.rules,
      );
    } catch (err) {
      this.fail(`bundle ${bundle.version} does not compile: ${errText(err)}`);
      return { applied: false, reason: 'invalid', kills: [] };
    }
    this.bundle = bundle;
    const ccd = this.d.ccd?.sync(bundle.clients);
    const ok = await this.install(delta);
    const kills = await this.endSessions(bundle, ccd);
    if (ok)
      log.info(
        { version: bundle.version, mode: bundle.mode, ...this.compiler.counts },
        'access bundle applied',
      );
    return ok ? { applied: true, kills } : { applied: false, reason: 'install-failed', kills };
  }

  /** Puts the compiler's state into the kernel: a delta when the table holds it already, else a replace. */
  private async install(delta: CompileDelta | undefined): Promise<boolean> {
    const bundle = this.bundle;
    if (!bundle) return true;
    if (!this.clusterReady) {
      this.state = 'waiting-for-cluster';
      return true;
    }
    try {
      if (this.installed && this.installedMode === bundle.mode && delta) {
        try {
          await this.d.enforcer.applyDelta(delta, this.compiler.ruleIds());
        } catch (err) {
          // Kernel state and ours disagree (or a bad element): one atomic replace puts it right.
          log.warn({ err }, 'nft change refused; replacing the table');
          await this.replaceAll(bundle.mode);
        }
      } else await this.replaceAll(bundle.mode);
      this.state = 'applied';
      this.lastError = null;
      this.appliedAt = new Date();
      return true;
    } catch (err) {
      this.installed = false; // what the kernel holds is the last good table, not ours: replace next time
      this.fail(`nft refused bundle ${bundle.version}: ${errText(err)}`);
      this.scheduleRetry();
      return false;
    }
  }

  private async replaceAll(mode: AccessMode): Promise<void> {
    await this.d.enforcer.replace(this.spec(mode, true));
    this.replacements++;
    this.installedMode = mode;
    this.installed = true;
  }

  private spec(mode: AccessMode, withRules: boolean) {
    return {
      mode,
      tun: this.d.tun ?? 'tun*',
      dns: this.d.dnsServers,
      rules: withRules ? this.compiler.snapshot() : [],
    };
  }

  private onEvent(e: ClusterEvent): void {
    if (this.stopped) return;
    try {
      this.pendingEvents.push(this.compiler.apply(e));
      if (this.d.neighbours) this.pendingTaken.push(...this.holders.take(e));
    } catch (err) {
      this.fail(`cluster event not compiled: ${errText(err)}`);
      return;
    }
    if (e.type === 'resync-done' && !this.clusterReady) {
      this.clusterReady = true;
      this.pendingEvents = [];
      void this.serial(() => this.install(undefined));
      return;
    }
    if (!this.batchTimer)
      this.batchTimer = setTimeout(() => {
        this.batchTimer = undefined;
        void this.serial(() => this.flushEvents());
      }, this.d.batchMs ?? 20);
  }

  private async flushEvents(): Promise<void> {
    const deltas = this.pendingEvents;
    this.pendingEvents = [];
    if (deltas.length > 0 && this.installed && this.bundle) await this.install(mergeDeltas(deltas));
    await this.forgetTaken();
  }

  /** After the rules let the new pod's address in: drops the old pod's neighbour entries for it. */
  private async forgetTaken(): Promise<void> {
    const taken = this.pendingTaken;
    this.pendingTaken = [];
    if (taken.length === 0 || !this.d.neighbours) return;
    try {
      await this.d.neighbours.forget(taken);
      log.info({ addresses: taken }, 'pod addresses taken by new pods: neighbour entries dropped');
    } catch (err) {
      log.warn({ err, addresses: taken }, 'neighbour entries not dropped (they age out by themselves)');
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.serial(() => this.install(undefined));
    }, this.d.retryMs ?? 2000);
    this.retryTimer.unref?.();
  }

  /** Ends sessions of devices not in the bundle (HALT: they must not reconnect) or readdressed ones. */
  private async endSessions(bundle: AccessBundle, ccd: CcdSyncResult | undefined): Promise<AccessKill[]> {
    if (!this.d.connect || !this.d.ccd) return [];
    const allowed = new Set(bundle.clients.map((c) => c.commonName));
    const readdressed = new Set(ccd?.readdressed ?? []);
    const kills: AccessKill[] = [];
    let m: ManagementApi | undefined;
    try {
      m = await this.d.connect();
      for (const s of (await m.status()).clients) {
        // A connection still in its TLS handshake (UNDEF): its certificate is not checked yet
        // (ccd-exclusive and the CRL do that at the end of it), and killing it would drop a device that
        // may well be listed, silently (the HALT reaches no client without keys): leave it alone.
        // parseStatus3 already lists those apart; this keeps any other status source honest too.
        if (s.commonName === HANDSHAKING) continue;
        const gone = !allowed.has(s.commonName);
        if (!gone && !readdressed.has(s.commonName)) continue;
        await m.clientKill(s.clientId, gone);
        kills.push({
          commonName: s.commonName,
          clientId: s.clientId,
          realAddress: s.realAddress,
          reason: gone ? 'not-allowed' : 'readdressed',
          halt: gone,
        });
      }
    } catch (err) {
      log.warn({ err }, 'live sessions not checked against the access bundle (management interface)');
    } finally {
      m?.close();
    }
    if (kills.length > 0) {
      log.info(
        { kills: kills.map((k) => k.commonName), version: bundle.version },
        'sessions ended by access bundle',
      );
      try {
        await this.d.reporter?.sessionsEnded({ version: bundle.version, at: new Date(), kills });
      } catch (err) {
        log.error({ err }, 'access report failed');
      }
    }
    return kills;
  }

  private fail(message: string): void {
    this.lastError = message;
    if (this.bundle) this.state = 'stale';
    log.error({ inForce: this.bundle?.version ?? null }, `${message}; last good state kept`);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
