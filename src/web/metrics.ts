import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../store/types.js';
import type { AppContext } from '../services/context.js';
import type { SessionsProvider } from './sessions-provider.js';
import { readAccessStatus } from '../openvpn/access-local.js';
import { serverDir } from '../openvpn/local-publisher.js';
import { resolve } from 'node:path';

/**
 * One prom-client registry per app (not the global one), so that several apps in one process (tests,
 * benchmarks) do not clash over metric names.
 */
export function createMetrics(
  store: Store,
  sessions: SessionsProvider | undefined,
  now: () => Date,
  ctx?: Pick<AppContext, 'config' | 'ca'>,
): { registry: Registry; middleware: RequestHandler } {
  const registry = new Registry();
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
    collect() {
      this.set({ status: 'valid' }, store.listCerts({ status: 'valid', limit: 0 }).total);
      this.set({ status: 'revoked' }, store.listCerts({ status: 'revoked', limit: 0 }).total);
    },
  });
  if (ctx) {
    const days = ctx.config.vpn.expiryWarningDays;
    new Gauge({
      name: 'podgate_certificates_expiring',
      help: `Valid client and gateway certificates expiring within vpn.expiryWarningDays (${days}) days`,
      registers: [registry],
      collect() {
        const at = now();
        const count = (kind: 'client' | 'gateway') =>
          store.listCerts({ status: 'valid', kind, expiringWithinDays: days, now: at, limit: 0 }).total;
        this.set(count('client') + count('gateway'));
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
    collect() {
      this.set(store.listRules().length);
    },
  });
  new Gauge({
    name: 'podgate_access_bundle_version',
    help: 'Version of the access bundle (rises with every change to rules, groups, devices, addresses, mode)',
    registers: [registry],
    collect() {
      this.set(store.getAccessState().version);
    },
  });
  new Gauge({
    name: 'podgate_access_enforced',
    help: '1 when access.mode is enforce as recorded in the data dir or defaulted (the config may override)',
    registers: [registry],
    collect() {
      const mode = ctx?.config.access.mode ?? store.getSetting('access.mode') ?? 'enforce';
      this.set(mode === 'enforce' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'podgate_crl_next_update_seconds',
    help: 'Seconds until the current CRL expires (negative: expired; OpenVPN then rejects everyone)',
    registers: [registry],
    collect() {
      const crl = store.getCrl();
      if (crl) this.set((crl.nextUpdate.getTime() - now().getTime()) / 1000);
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
