import { lookup } from 'node:dns/promises';
import type { Config } from '../config/schema.js';
import { isIp, serverTunnelAddress } from '../lib/cidr.js';
import { PROBE_PATH, webOrigin } from '../lib/connection-probe.js';
import { logger } from '../lib/logger.js';

const log = logger.child({ module: 'connection-check' });

/**
 * What a check proves when it is green, and so which fix its red calls for:
 * - `tunnel`: the server's tunnel-side address (local mode, in place of a server pod IP): the tunnel is up;
 * - `pod`: a server pod's IP: the pushed pod route is installed;
 * - `service-ip`: the manager's Service by ClusterIP: the pushed service route is installed;
 * - `service-dns`: the same Service by cluster DNS name: the device uses the pushed DNS server.
 */
export type CheckKind = 'tunnel' | 'pod' | 'service-ip' | 'service-dns';

export interface CheckTarget {
  kind: CheckKind;
  label: string;
  /** Full probe URL without the nonce (the page adds `?nonce=`). */
  url: string;
  /** Shown under the label (why this address, what stands in for what). */
  note?: string;
}

export interface CheckPlan {
  targets: CheckTarget[];
  /** The origins the page may fetch (its CSP connect-src). */
  origins: string[];
  /** Why the check cannot run at all (shown instead of the button). */
  unavailable?: string;
}

export interface ConnectionCheckDeps {
  config: Config;
  /** The server pods' IPs (cluster mode; absent or empty: local mode). */
  serverPodIps?: () => Promise<string[]>;
  /** Resolves the Service's DNS name for its ClusterIP (default: the system resolver). */
  resolve?: (host: string) => Promise<string>;
  now?: () => number;
  /** How long a pod list or a name lookup may take (default 2 s). */
  lookupTimeoutMs?: number;
}

/** At most this many server pods are checked (each replica answers for itself). */
const MAX_PODS = 3;
/** Pod IPs and the resolved ClusterIP are kept this long (every developer's page load asks). */
const CACHE_MS = 30_000;
/** A slow API server or resolver must not hold up the devices page: past this, plan without it. */
const LOOKUP_TIMEOUT_MS = 2000;

function withinTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function hostUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Plans "Check my connection": which probe URLs the devices page fetches through the tunnel. The
 * listeners beside openvpn (the pod's agent, `server run`) and the manager's own web app answer them.
 */
export class ConnectionCheckService {
  private pods: { at: number; ips: string[] } | undefined;
  private serviceIp: { at: number; url: string | undefined } | undefined;

  constructor(private readonly deps: ConnectionCheckDeps) {}

  private get timeoutMs(): number {
    return this.deps.lookupTimeoutMs ?? LOOKUP_TIMEOUT_MS;
  }

  private get now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  private async podIps(): Promise<string[]> {
    if (!this.deps.serverPodIps) return [];
    if (this.pods && this.now - this.pods.at < CACHE_MS) return this.pods.ips;
    let ips: string[] = [];
    try {
      ips = (await withinTimeout(this.deps.serverPodIps(), this.timeoutMs)).filter(isIp).slice(0, MAX_PODS);
    } catch (err) {
      log.warn({ err: String(err) }, 'server pod addresses unavailable');
    }
    this.pods = { at: this.now, ips };
    return ips;
  }

  private async serviceIpUrl(): Promise<string | undefined> {
    const cc = this.deps.config.connectionCheck;
    if (cc.serviceIpUrl) return cc.serviceIpUrl.replace(/\/$/, '');
    if (!cc.serviceDnsUrl) return undefined;
    if (this.serviceIp && this.now - this.serviceIp.at < CACHE_MS) return this.serviceIp.url;
    const u = new URL(cc.serviceDnsUrl);
    let url: string | undefined;
    try {
      const resolve = this.deps.resolve ?? (async (h: string) => (await lookup(h)).address);
      const ip = await withinTimeout(resolve(u.hostname), this.timeoutMs);
      url = `${u.protocol}//${ip.includes(':') ? `[${ip}]` : ip}${u.port ? `:${u.port}` : ''}`;
    } catch (err) {
      log.warn({ err: String(err), host: u.hostname }, 'manager Service name does not resolve here');
    }
    this.serviceIp = { at: this.now, url };
    return url;
  }

  async plan(): Promise<CheckPlan> {
    const { config } = this.deps;
    const cc = config.connectionCheck;
    const targets: CheckTarget[] = [];
    const pods = cc.port > 0 ? await this.podIps() : [];
    if (pods.length > 0) {
      pods.forEach((ip, i) =>
        targets.push({
          kind: 'pod',
          label: pods.length > 1 ? `VPN server pod ${i + 1} (pod IP ${ip})` : `VPN server pod (pod IP ${ip})`,
          url: `${hostUrl(ip, cc.port)}${PROBE_PATH}`,
        }),
      );
    } else if (cc.port > 0) {
      const ip = serverTunnelAddress(config.vpn.clientSubnet);
      targets.push({
        kind: 'tunnel',
        label: `VPN server, tunnel side (${ip})`,
        url: `${hostUrl(ip, cc.port)}${PROBE_PATH}`,
        note:
          pods.length === 0 && this.deps.serverPodIps
            ? "No server pod address is known right now: the server's tunnel-side address is checked instead (it stands in for a server pod IP)."
            : 'The server runs on a host here (local mode), not in a pod: its tunnel-side address stands in for a server pod IP.',
      });
    }
    const ipUrl = await this.serviceIpUrl();
    if (ipUrl)
      targets.push({
        kind: 'service-ip',
        label: `podgate's Service by ClusterIP (${new URL(ipUrl).host})`,
        url: `${ipUrl}${PROBE_PATH}`,
      });
    if (cc.serviceDnsUrl) {
      const base = cc.serviceDnsUrl.replace(/\/$/, '');
      targets.push({
        kind: 'service-dns',
        label: `podgate's Service by cluster DNS name (${new URL(base).hostname})`,
        url: `${base}${PROBE_PATH}`,
      });
    }
    const origins = [...new Set(targets.map((t) => new URL(t.url).origin))];
    let unavailable: string | undefined;
    if (!webOrigin(config.web.publicUrl))
      unavailable =
        'The check needs web.publicUrl (the address of this page): the probes answer only pages from that address.';
    else if (targets.length === 0)
      unavailable = 'Nothing to check: connectionCheck.port is 0 and no connectionCheck Service is set.';
    return { targets, origins, ...(unavailable ? { unavailable } : {}) };
  }
}
