import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../store/types.js';
import type { AppContext } from '../services/context.js';
import type { SessionsProvider } from './sessions-provider.js';
import { readAccessStatus } from '../openvpn/access-local.js';
import { serverDir } from '../openvpn/local-publisher.js';
import { resolve } from 'node:path';
import type { ClusterPort } from './cluster-port.js';
import type { LoginThrottle } from './login-throttle.js';

/** How long one read of the cluster status serves scrapes (every gauge of a scrape shares it). */
const CLUSTER_STATUS_TTL_MS = 10_000;
/** A slow API server leaves the cluster gauges absent rather than make the scrape time out. */
const CLUSTER_STATUS_WAIT_MS = 3_000;

function withinWait<T>(p: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), CLUSTER_STATUS_WAIT_MS);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

type ClusterSnapshot = Awaited<ReturnType<ClusterPort['status']>>;

/** What the metrics read besides the store: the cluster (when wired) and the sign-in throttle. */
export interface MetricsSources {
  cluster?: Pick<ClusterPort, 'status'>;
  throttle?: Pick<LoginThrottle, 'failures'>;
}

/**
 * One prom-client registry per app (not the global one), so that several apps in one process (tests,
 * benchmarks) do not clash over metric names.
 */
export function createMetrics(
  store: Store,
  sessions: SessionsProvider | undefined,
  now: () => Date,
  ctx?: Pick<AppContext, 'config' | 'ca'>,
  sources: MetricsSources = {},
): { registry: Registry; middleware: RequestHandler } {
  const registry = new Registry();
  // One cluster status read per TTL for all gauges; undefined when unreachable (those gauges go absent).
  let clusterRead: { at: number; value: Promise<ClusterSnapshot | undefined> } | undefined;
  const clusterStatus = (): Promise<ClusterSnapshot | undefined> => {
    const cluster = sources.cluster;
    if (!cluster) return Promise.resolve(undefined);
    const t = now().getTime();
    if (!clusterRead || t - clusterRead.at >= CLUSTER_STATUS_TTL_MS || t < clusterRead.at) {
      clusterRead = { at: t, value: withinWait(cluster.status()).catch(() => undefined) };
    }
    return clusterRead.value;
  };
  collectDefaultMetrics({ register: registry, prefix: 'podgate_' });
  const requests = new Counter({
    name: 'podgate_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'podgate_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'podgate_certificates',
    help: 'Client and gateway certificates by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      this.set({ status: 'valid' }, (await store.listCerts({ status: 'valid', limit: 0 })).total);
      this.set({ status: 'revoked' }, (await store.listCerts({ status: 'revoked', limit: 0 })).total);
    },
  });
  if (ctx) {
    const days = ctx.config.vpn.expiryWarningDays;
    new Gauge({
      name: 'podgate_certificates_expiring',
      help: `Valid client and gateway certificates expiring within vpn.expiryWarningDays (${days}) days`,
      registers: [registry],
      async collect() {
        const at = now();
        const count = async (kind: 'client' | 'gateway') =>
          (await store.listCerts({ status: 'valid', kind, expiringWithinDays: days, now: at, limit: 0 }))
            .total;
        this.set((await count('client')) + (await count('gateway')));
      },
    });
    new Gauge({
      name: 'podgate_ca_expiry_seconds',
      help: 'Seconds until the CA certificate expires (podgate warns within a year: plan `podgate ca rotate`)',
      registers: [registry],
      collect() {
        this.set((ctx.ca.notAfter.getTime() - now().getTime()) / 1000);
      },
    });
  }
  new Gauge({
    name: 'podgate_access_rules',
    help: 'Access rules stored',
    registers: [registry],
    async collect() {
      this.set((await store.listRules()).length);
    },
  });
  new Gauge({
    name: 'podgate_access_bundle_version',
    help: 'Version of the access bundle (rises with every change to rules, groups, devices, addresses, mode)',
    registers: [registry],
    async collect() {
      this.set((await store.getAccessState()).version);
    },
  });
  new Gauge({
    name: 'podgate_access_enforced',
    help: '1 when access.mode is enforce as recorded in the data dir or defaulted (the config may override)',
    registers: [registry],
    async collect() {
      const mode = ctx?.config.access.mode ?? (await store.getSetting('access.mode')) ?? 'enforce';
      this.set(mode === 'enforce' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'podgate_crl_next_update_seconds',
    help: 'Seconds until the current CRL expires (negative: expired; OpenVPN then rejects everyone)',
    registers: [registry],
    async collect() {
      const crl = await store.getCrl();
      if (crl) this.set((crl.nextUpdate.getTime() - now().getTime()) / 1000);
    },
  });
  new Gauge({
    name: 'podgate_crl_number',
    help: 'Number of the current CRL (every revocation publishes the next one)',
    registers: [registry],
    async collect() {
      const crl = await store.getCrl();
      if (crl) this.set(crl.number);
    },
  });
  new Gauge({
    name: 'podgate_crl_age_seconds',
    help: 'Seconds since the current CRL was signed (thisUpdate)',
    registers: [registry],
    async collect() {
      const crl = await store.getCrl();
      if (crl) this.set((now().getTime() - crl.thisUpdate.getTime()) / 1000);
    },
  });
  new Gauge({
    name: 'podgate_crl_applied_number',
    help: 'CRL number the server pod agent last applied, per server namespace (cluster mode)',
    labelNames: ['namespace'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const s = await clusterStatus();
      if (s?.agent.lastAppliedCrlNumber !== undefined) {
        this.set({ namespace: s.namespace }, s.agent.lastAppliedCrlNumber);
      }
    },
  });
  new Gauge({
    name: 'podgate_revocations_pending',
    help: 'Revocations not yet effective: sessions the agent could not end yet, CRLs the server pod has not applied',
    registers: [registry],
    async collect() {
      const s = await clusterStatus();
      const crl = await store.getCrl();
      const behind =
        s?.agent.lastAppliedCrlNumber !== undefined && crl && crl.number > s.agent.lastAppliedCrlNumber
          ? 1
          : 0;
      this.set((await store.listPending()).length + (s?.agent.pending.length ?? 0) + behind);
    },
  });
  new Gauge({
    name: 'podgate_revocation_pending_seconds',
    help: 'Age of the oldest revocation not yet effective (0: none pending)',
    registers: [registry],
    async collect() {
      const t = now().getTime();
      const since: number[] = (await store.listPending()).map((p) => p.queuedAt.getTime());
      const s = await clusterStatus();
      const crl = await store.getCrl();
      // the server pod is behind: at least as old as the newest CRL it has not applied
      if (s?.agent.lastAppliedCrlNumber !== undefined && crl && crl.number > s.agent.lastAppliedCrlNumber) {
        since.push(crl.thisUpdate.getTime());
      }
      this.set(since.length ? Math.max(0, (t - Math.min(...since)) / 1000) : 0);
    },
  });
  new Counter({
    name: 'podgate_revocations_effective_total',
    help: 'Revocations that took effect on a server (CRL applied, sessions ended): revocation.effective audit rows',
    registers: [registry],
    async collect() {
      const n = await store.countAudit({ action: 'revocation.effective' });
      this.reset();
      if (n > 0) this.inc(n);
    },
  });
  new Gauge({
    name: 'podgate_revocation_last_effect_seconds',
    help: 'Seconds from revocation to effect for the most recent revocation that took effect (0: none yet)',
    registers: [registry],
    async collect() {
      const last = (await store.listAudit({ action: 'revocation.effective', limit: 1 }))[0];
      const ms = (last?.details as { latencyMs?: unknown } | undefined)?.latencyMs;
      if (typeof ms === 'number' && Number.isFinite(ms)) this.set(Math.max(0, ms) / 1000);
    },
  });
  new Gauge({
    name: 'podgate_server_replicas',
    help: 'OpenVPN server replicas in the cluster by state (desired, ready), per server namespace',
    labelNames: ['namespace', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const s = await clusterStatus();
      if (!s) return;
      const ready = s.deployment?.readyReplicas ?? 0;
      this.set({ namespace: s.namespace, state: 'desired' }, s.deployment?.replicas ?? 0);
      this.set({ namespace: s.namespace, state: 'ready' }, ready);
    },
  });
  new Counter({
    name: 'podgate_access_replica_dropped_packets_total',
    help: 'Packets from VPN clients dropped by the access policy, per server replica (pod), as its agent last reported (from its start)',
    labelNames: ['replica'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const s = await clusterStatus();
      // One series per replica whose report is fresh: a few pods, never per user or rule.
      for (const r of s?.replicas ?? []) {
        const n = r.droppedPackets;
        if (r.stale || typeof n !== 'number' || !Number.isFinite(n) || n < 0) continue;
        this.inc({ replica: r.pod }, n);
      }
    },
  });
  new Counter({
    name: 'podgate_signin_failures_total',
    help: 'Failed password and token sign-ins (wrong password or token, unknown or disabled account)',
    registers: [registry],
    collect() {
      const failures = sources.throttle?.failures ?? 0;
      this.reset();
      if (failures > 0) this.inc(failures);
    },
  });
  if (ctx) {
    const dir = serverDir(resolve(ctx.config.dataDir));
    // One number per server (never per user or rule): what `server run`'s agent last wrote.
    new Gauge({
      name: 'podgate_access_dropped_packets',
      help: 'Packets from VPN clients dropped by the access policy on the local server (0 without one)',
      registers: [registry],
      collect() {
        const s = readAccessStatus(dir);
        this.set(s?.droppedPackets ?? 0);
      },
    });
    new Gauge({
      name: 'podgate_access_stale',
      help: '1 when the local server keeps its last good access state because the newest could not be applied',
      registers: [registry],
      collect() {
        const s = readAccessStatus(dir);
        this.set(s?.state === 'stale' ? 1 : 0);
      },
    });
  }
  // Both session gauges come from one reading per scrape (prom-client collects them concurrently).
  let reading: { at: number; list: ReturnType<SessionsProvider['list']> } | undefined;
  const currentSessions = () => {
    const at = Date.now();
    if (!reading || at - reading.at > 1000) reading = { at, list: sessions!.list() };
    return reading.list;
  };
  new Gauge({
    name: 'podgate_vpn_sessions',
    help: 'Live VPN sessions (absent when the server is not connected)',
    registers: [registry],
    async collect() {
      if (!sessions) return;
      try {
        this.set((await currentSessions()).length);
      } catch {
        // A scrape must not fail because the management interface is busy.
      }
    },
  });
  new Gauge({
    name: 'podgate_vpn_replica_sessions',
    help: 'Live VPN sessions per server replica (pod), in cluster mode',
    labelNames: ['replica'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      if (!sessions) return;
      try {
        // One series per replica: a few pods, never per user or session.
        const counts = new Map<string, number>();
        for (const s of await currentSessions())
          if (s.replica) counts.set(s.replica, (counts.get(s.replica) ?? 0) + 1);
        for (const [replica, n] of counts) this.set({ replica }, n);
      } catch {
        /* as above */
      }
    },
  });

  const middleware: RequestHandler = (req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      // Route patterns, not raw paths: label values must stay few (no serials or user names).
      const route = req.route?.path
        ? `${req.baseUrl}${String(req.route.path)}`
        : res.statusCode === 404
          ? 'unmatched'
          : req.baseUrl || 'static';
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      duration.observe({ route }, Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  };
  return { registry, middleware };
}
