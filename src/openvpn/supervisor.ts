/**
 * `podgate server run`: openvpn on a plain Linux host, with the agent beside it. Writes the server files,
 * puts the verified CRL in place, starts openvpn (argv array, `--writepid`), restarts it with backoff
 * when it dies, optionally MASQUERADEs the client subnet, applies new revocation bundles within a
 * second, re-signs the CRL daily, and stops cleanly (openvpn, NAT rule, timers) on stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { Config } from '../config/schema.js';
import { repeat, systemClock, type Clock, type Timer } from '../lib/clock.js';
import { logger } from '../lib/logger.js';
import { removeStaleTempFiles } from '../lib/fs-atomic.js';
import { hostname } from 'node:os';
import type { AuditStore, CertStore, PendingStore } from '../store/types.js';
import type { ClusterObjectSource } from '../access/types.js';
import { LocalAccess } from './access-local.js';
import { RevocationAgent } from './agent.js';
import { LocalCrlPublisher } from './local-publisher.js';
import { LocalBundleSource } from './local-source.js';
import { ManagementClient } from './management-client.js';
import { NatRule } from './nat.js';
import type { CrlPublisher, RevocationBundle } from './revocation-bundle.js';
import { serverPaths, writeServerFiles, type ServerIdentityFiles, type ServerPaths } from './server-files.js';
import { StoreAgentReporter } from './store-reporter.js';
import { SessionRecorder, type RecorderStore } from './session-recorder.js';
import { ProbeResponder } from './probe-responder.js';
import { serverTunnelAddress } from '../lib/cidr.js';
import { webOrigin } from '../lib/connection-probe.js';
import { startUpkeep } from './upkeep.js';

const log = logger.child({ module: 'supervisor' });
const HOUR = 3_600_000;

/** The parts of the application context the supervisor uses (AppContext satisfies it). */
export interface SupervisorContext {
  config: Config;
  store: AuditStore &
    PendingStore &
    RecorderStore &
    Pick<CertStore, 'getValidCertByCommonName' | 'touchLastSeen'>;
  revocation: {
    ensureFreshCrl(): Promise<unknown>;
    resign(actor: string): Promise<unknown>;
    bundle(): Promise<RevocationBundle>;
    addPublisher(p: CrlPublisher): void;
  };
  server: { ensure(): Promise<ServerIdentityFiles> };
  /** The CAs in force; when `ca rotate` / `ca retire-old` change them, openvpn is given the new set. */
  cas?: { refresh(): boolean; readonly version: number };
  /** The timers' clock (default: the system clock). */
  clock?: Clock;
}

export interface SupervisorOptions {
  openvpnBinary?: string;
  /** Long-running child processes: an argv array, never a shell string. Injected by tests. */
  spawnProcess?: (argv: readonly string[], cwd: string) => ChildProcess;
  /** Called with each openvpn output line (default: written to stderr with an "openvpn: " prefix). */
  onOutput?: (line: string) => void;
  restartInitialMs?: number;
  restartMaxMs?: number;
  /** How often the upkeep runs (CRL re-sign and supersede sweep, server certificate renewal). Default hourly. */
  crlCheckEveryMs?: number;
  /** The CA-expiry warning to log (once a day while it holds). */
  caWarning?: () => string | undefined;
  /**
   * How often live sessions are read to update certificates' lastSeenAt and the session history.
   * Default `sessions.recordEverySeconds`; 0 disables.
   */
  lastSeenEveryMs?: number;
  /** The name sessions are recorded under (default: this host's name). */
  replica?: string;
  /** How often the data dir's CA files are checked for a rotation (four stat calls). Default 2 s. */
  caCheckEveryMs?: number;
  /** Live cluster objects for Kubernetes destinations of access rules; without it only CIDRs resolve. */
  cluster?: ClusterObjectSource;
  /** How often revocations.json is polled behind fs.watch. Default 500 ms. */
  bundlePollMs?: number;
}

function defaultSpawn(argv: readonly string[], cwd: string): ChildProcess {
  log.debug({ argv }, 'spawn');
  return spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

export class ServerSupervisor {
  readonly paths: ServerPaths;
  agent: RevocationAgent | undefined;
  private child: ChildProcess | undefined;
  private source: LocalBundleSource | undefined;
  private nat: NatRule[] = [];
  /** Access rules: nftables, the client-config-dir, sessions of devices a bundle drops. */
  access: LocalAccess | undefined;
  private timers: Timer[] = [];
  private readonly clock: Clock;
  private stopping = false;
  private restartDelay: number;
  private startedAt = 0;
  private readyWaiters: (() => void)[] = [];
  /** The server certificate openvpn was started with; a renewed one rewrites the files and restarts it. */
  private serverCertPem = '';
  /** The CA bundle openvpn was started with, and the CaSet version it came from. */
  private caBundlePem = '';
  private caVersion = 0;
  private managementPassword = '';
  /** Runs of syncServerMaterial, one at a time (the CA timer and the hourly timer may overlap). */
  private syncing: Promise<boolean> = Promise.resolve(false);
  /** How many times openvpn was (re)started. */
  starts = 0;
  /** The session history of this openvpn. */
  readonly recorder: SessionRecorder;
  /** "Check my connection": answers on the server's tunnel-side address (connectionCheck.port). */
  probe: ProbeResponder | undefined;

  constructor(
    private readonly ctx: SupervisorContext,
    private readonly opts: SupervisorOptions = {},
  ) {
    this.paths = serverPaths(ctx.config);
    this.clock = ctx.clock ?? systemClock;
    this.restartDelay = opts.restartInitialMs ?? 500;
    this.recorder = new SessionRecorder(ctx.store, opts.replica ?? hostname());
  }

  /** Prepares everything and starts openvpn; resolves once openvpn was spawned (see `ready()`). */
  async start(): Promise<void> {
    const { ctx, paths } = this;
    this.caVersion = ctx.cas?.version ?? 0;
    const id = await ctx.server.ensure();
    this.serverCertPem = id.certPem;
    this.caBundlePem = id.caCertPem;
    this.access = new LocalAccess({
      config: ctx.config,
      paths,
      store: ctx.store,
      cluster: this.opts.cluster,
      connect: () =>
        ManagementClient.connect({
          socketPath: paths.managementSocket,
          password: this.managementPassword,
          connectTimeoutMs: 2000,
        }),
      onIdentityNeeded: () => this.restartForAccess(),
    });
    const { managementPassword } = writeServerFiles(ctx.config, paths, id, this.accessFiles());
    this.managementPassword = managementPassword;
    removeStaleTempFiles(dirname(paths.activeCrl)); // the runtime CRL dir, when it is not server/
    const publisher = new LocalCrlPublisher(paths.dir);
    ctx.revocation.addPublisher(publisher);
    await ctx.revocation.ensureFreshCrl();
    const bundle = await ctx.revocation.bundle();
    await publisher.publish(bundle);

    this.agent = this.makeAgent(id.caCertPem);
    // openvpn is not running yet, so no session of a revoked certificate can exist: put the CRL in place
    // and settle whatever a previous run left pending.
    const settled = this.agent.prime(bundle);
    const leftover = await ctx.store.listPending();
    if (leftover.length > 0) {
      await ctx.store.clearPending(leftover.map((p) => p.serial));
      log.info({ serials: leftover.map((p) => p.serial) }, 'pending revocations settled by the restart');
    }
    log.info({ crlNumber: settled }, 'CRL in place');
    // Sessions a previous run (killed, crashed) left open ended with it.
    await this.recorder.closeAll('server-restart');

    this.source = new LocalBundleSource({
      dir: paths.dir,
      onBundle: async (b) => {
        // A bundle signed under a new CA set (`ca rotate` publishes one) waits for the reload, which
        // gives the agent the CAs to verify it with.
        if (ctx.cas && (ctx.cas.refresh() || ctx.cas.version !== this.caVersion))
          await this.syncServerMaterial();
        return this.agent!.apply(b);
      },
      pollMs: this.opts.bundlePollMs ?? 500,
      clock: this.clock,
    });
    await this.source.start();
    // The client-config-dir and the filter are complete before openvpn admits anyone.
    await this.access.start();

    // The NAT rule is added while openvpn starts, not before it: openvpn takes longer to come up than two
    // iptables calls, and no client packet reaches a pod before openvpn is up. start() still waits for it.
    let natAdded: Promise<void> | undefined;
    if (ctx.config.vpn.nat) {
      const { clientSubnet, clientSubnet6 } = ctx.config.vpn;
      const rules = [new NatRule(clientSubnet)];
      if (clientSubnet6) rules.push(new NatRule(clientSubnet6, 'podgate', 'vpn.clientSubnet6'));
      this.nat = rules;
      natAdded = Promise.all(rules.map((r) => r.add())).then(() =>
        log.info({ subnets: [clientSubnet, clientSubnet6].filter(Boolean) }, 'MASQUERADE rule added'),
      );
    }
    const { clock } = this;
    this.timers.push(
      startUpkeep({
        clock,
        revocation: ctx.revocation,
        renewServer: () => this.renewServerCert(),
        ...(this.opts.caWarning ? { caWarning: this.opts.caWarning } : {}),
        everyMs: this.opts.crlCheckEveryMs ?? HOUR,
      }),
    );
    if (ctx.cas) {
      const cas = ctx.cas;
      const check = () =>
        cas.refresh() || cas.version !== this.caVersion ? this.syncServerMaterial() : undefined;
      this.timers.push(
        repeat(clock, this.opts.caCheckEveryMs ?? 2000, check, {
          onError: (err) => log.error({ err }, 'CA reload failed'),
        }),
      );
    }
    const seenEvery = this.opts.lastSeenEveryMs ?? ctx.config.sessions.recordEverySeconds * 1000;
    if (seenEvery > 0)
      this.timers.push(repeat(clock, seenEvery, () => this.touchLastSeen(managementPassword)));
    this.spawnOpenvpn();
    const probePort = ctx.config.connectionCheck.port;
    if (probePort > 0) {
      // Binds once openvpn has made the tun device and its address (the responder retries until then).
      this.probe = new ProbeResponder({
        host: serverTunnelAddress(ctx.config.vpn.clientSubnet),
        port: probePort,
        allowedOrigin: webOrigin(ctx.config.web.publicUrl),
      });
      this.probe.start();
    }
    await natAdded;
  }

  /**
   * The server certificate renews itself 30 days before it expires (ServerIdentityService.ensure): when
   * ensure() hands back a different certificate, the files are rewritten and openvpn is restarted (the
   * exit handler starts it again). Clients reconnect by themselves and need nothing new: the CA and the
   * server name they check are unchanged. Returns true when it restarted openvpn.
   */
  renewServerCert(): Promise<boolean> {
    return this.syncServerMaterial();
  }

  /**
   * Gives openvpn the server material in force: a renewed server certificate, or a new CA set after
   * `podgate ca rotate` / `ca retire-old` (run by another process while this one runs). For a new CA
   * set, the CRL is signed once per CA in force and put in place by an agent that trusts the new set
   * before openvpn restarts, so no client is let in without its CA's CRL. openvpn is restarted (not
   * sent SIGHUP: it re-reads its root-only files only before it drops privileges): clients reconnect by
   * themselves. Returns true when it restarted openvpn.
   */
  syncServerMaterial(): Promise<boolean> {
    const run = () => this.syncNow();
    this.syncing = this.syncing.then(run, run);
    return this.syncing;
  }

  private async syncNow(): Promise<boolean> {
    if (this.stopping) return false;
    const { ctx, paths } = this;
    const id = await ctx.server.ensure(); // refreshes the CA set first
    const caVersion = ctx.cas?.version ?? 0;
    const caChanged = caVersion !== this.caVersion;
    if (!caChanged && id.certPem === this.serverCertPem && id.caCertPem === this.caBundlePem) return false;
    if (caChanged || id.caCertPem !== this.caBundlePem) {
      // The agent verifies CRLs against the CAs it trusts: a new one for the new set, given a CRL signed
      // by each of them. prime() (no session kills): openvpn restarts below, no session outlives it.
      const agent = this.makeAgent(id.caCertPem);
      await ctx.revocation.resign('system');
      agent.prime(await ctx.revocation.bundle());
      this.agent?.stop();
      this.agent = agent;
    }
    writeServerFiles(ctx.config, paths, id, this.accessFiles());
    this.serverCertPem = id.certPem;
    this.caBundlePem = id.caCertPem;
    this.caVersion = caVersion;
    log.info({ caChanged }, 'server certificate or CA set changed; restarting openvpn');
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return true;
  }

  private accessFiles(): { identity: boolean } {
    return { identity: this.access?.identityAtConnect ?? false };
  }

  /**
   * The first access bundle arrived while openvpn runs without `ccd-exclusive`: rewrite server.conf
   * and restart openvpn once (clients reconnect and get their stable addresses).
   */
  private async restartForAccess(): Promise<void> {
    if (this.stopping) return;
    const id = await this.ctx.server.ensure();
    writeServerFiles(this.ctx.config, this.paths, id, this.accessFiles());
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }

  private makeAgent(caCertPem: string): RevocationAgent {
    const { paths } = this;
    return new RevocationAgent({
      caCertPem,
      crlFile: paths.activeCrl,
      connect: () =>
        ManagementClient.connect({
          socketPath: paths.managementSocket,
          password: this.managementPassword,
          connectTimeoutMs: 2000,
        }),
      reporter: new StoreAgentReporter(this.ctx.store),
      now: () => this.clock.now(),
    });
  }

  /** Resolves when the current openvpn reports "Initialization Sequence Completed". */
  ready(): Promise<void> {
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** pid of the running openvpn, if any. */
  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  private spawnOpenvpn(): void {
    const { paths } = this;
    rmSync(paths.managementSocket, { force: true }); // a stale socket from a killed openvpn blocks bind
    const argv = [
      this.opts.openvpnBinary ?? 'openvpn',
      '--config',
      paths.config,
      '--writepid',
      paths.pidFile,
    ];
    const child = (this.opts.spawnProcess ?? defaultSpawn)(argv, paths.dir);
    this.child = child;
    this.starts += 1;
    this.startedAt = this.clock.now().getTime();
    log.info({ pid: child.pid, start: this.starts }, 'openvpn started');
    const onLine = (line: string): void => {
      if (this.opts.onOutput) this.opts.onOutput(line);
      else process.stderr.write(`openvpn: ${line}\n`);
      if (line.includes('Initialization Sequence Completed')) {
        log.info({ pid: child.pid }, 'openvpn ready');
        for (const w of this.readyWaiters.splice(0)) w();
      }
    };
    if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
    if (child.stderr) createInterface({ input: child.stderr }).on('line', onLine);
    child.on('error', (err) => log.error({ err }, 'openvpn could not be started'));
    child.on('exit', (code, signal) => {
      rmSync(paths.pidFile, { force: true });
      if (this.stopping) return;
      this.safely(() => this.recorder.closeAll('server-restart'));
      if (this.clock.now().getTime() - this.startedAt > 60_000)
        this.restartDelay = this.opts.restartInitialMs ?? 500;
      const delay = this.restartDelay;
      this.restartDelay = Math.min(delay * 2, this.opts.restartMaxMs ?? 30_000);
      log.warn({ code, signal, restartInMs: delay }, 'openvpn exited; restarting');
      const t = this.clock.after(delay, () => {
        this.timers = this.timers.filter((x) => x !== t);
        if (!this.stopping) this.spawnOpenvpn();
      });
      this.timers.push(t);
    });
  }

  private safely(fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      log.warn({ err }, 'session history update failed');
    }
  }

  /**
   * Reads live sessions: marks their valid certificates as seen now (for the admin pages) and records
   * them in the session history. Never throws.
   */
  async touchLastSeen(password: string = this.managementPassword): Promise<void> {
    if (this.pid === undefined) return;
    try {
      const m = await ManagementClient.connect({
        socketPath: this.paths.managementSocket,
        password,
        connectTimeoutMs: 2000,
      });
      let names: string[];
      try {
        const clients = (await m.status()).clients;
        this.safely(() => this.recorder.record(clients, this.clock.now()));
        names = [...new Set(clients.map((c) => c.commonName))];
      } finally {
        m.close();
      }
      const serials: string[] = [];
      for (const cn of names) {
        const cert = await this.ctx.store.getValidCertByCommonName(cn);
        if (cert) serials.push(cert.serial);
      }
      if (serials.length > 0) await this.ctx.store.touchLastSeen(serials, this.clock.now());
    } catch (err) {
      log.debug({ err }, 'last-seen update skipped');
    }
  }

  /** Stops openvpn (SIGTERM, SIGKILL after 5 s), the watcher, the timers and removes the NAT rule. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.source?.stop();
    this.agent?.stop();
    await this.probe?.stop();
    await this.access?.stop(); // the nftables table and the client-config-dir stay: nothing opens
    for (const t of this.timers) t.cancel();
    // One last reading, so the bytes up to now are kept, then everything still open ends with the stop.
    if (this.pid !== undefined) await this.touchLastSeen();
    this.safely(() => this.recorder.closeAll('server-stop'));
    this.timers = [];
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    }
    for (const r of this.nat) await r.remove();
    // The runtime CRL dir under /run is rebuilt on every start; leave nothing behind there.
    const crlDir = dirname(this.paths.activeCrl);
    if (crlDir !== this.paths.dir) rmSync(crlDir, { recursive: true, force: true });
    log.info('server stopped');
  }
}
