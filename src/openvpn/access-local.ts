/**
 * Access enforcement for `podgate server run` (local mode): the AccessAgent fed from
 * `<dataDir>/server/access.json` (written atomically by the manager), with nftables on this host, the
 * client-config-dir next to the CRL, audit rows for ended sessions, and `access-status.json` (state and
 * the drop counter, for /metrics and `doctor`).
 *
 * Inactive until needed: with `access.modeBeforeBundle: open` and no bundle, nothing is installed (no
 * table, no `ccd-exclusive`: today's behaviour). The first bundle activates it; the supervisor then
 * restarts openvpn once with `client-config-dir` + `ccd-exclusive`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { forTunnel, TunnelSubnets } from '../lib/tunnel-subnets.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { logger } from '../lib/logger.js';
import { parseAccessBundleText } from '../access/bundle.js';
import type { AccessBundle, ClusterObjectSource } from '../access/types.js';
import type { AuditStore } from '../store/types.js';
import { AccessAgent, type AccessReporter, type AccessStatus } from './access-agent.js';
import { ClientConfigDir } from './client-config-dir.js';
import { LocalBundleSource } from './local-source.js';
import type { ManagementApi } from './management-client.js';
import { NftEnforcer, type Enforcer } from './nft-enforcer.js';
import type { ServerPaths } from './server-files.js';

const log = logger.child({ module: 'access-local' });

/** File names inside `<dataDir>/server/`. */
export const ACCESS_FILE = 'access.json';
export const ACCESS_STATUS_FILE = 'access-status.json';

/** What `access-status.json` holds. */
export interface AccessStatusFile extends AccessStatus {
  droppedPackets: number;
  updatedAt: string;
}

/** Reads `access-status.json` of a local server; undefined when access enforcement never ran there. */
export function readAccessStatus(serverDir: string): AccessStatusFile | undefined {
  try {
    return JSON.parse(readFileSync(join(serverDir, ACCESS_STATUS_FILE), 'utf8')) as AccessStatusFile;
  } catch {
    return undefined;
  }
}

/** Audit rows for sessions an access bundle ended (like `revocation.effective` for revocations). */
export class StoreAccessReporter implements AccessReporter {
  constructor(private readonly store: AuditStore) {}

  async sessionsEnded(r: Parameters<AccessReporter['sessionsEnded']>[0]): Promise<void> {
    for (const k of r.kills) {
      await this.store.appendAudit({
        actor: 'agent',
        action: 'access.session-ended',
        target: k.commonName,
        result: 'ok',
        time: r.at,
        details: { bundleVersion: r.version, reason: k.reason, halt: k.halt, realAddress: k.realAddress },
      });
    }
  }
}

export interface LocalAccessOptions {
  config: Config;
  paths: ServerPaths;
  store: AuditStore;
  connect: () => Promise<ManagementApi>;
  /** Called once when the first bundle arrives while openvpn runs without `ccd-exclusive`. */
  onIdentityNeeded: () => Promise<void>;
  /** Kubernetes destinations resolve only with a source (the cluster helper's watch). */
  cluster?: ClusterObjectSource;
  /** Injected by tests (e.g. nft in a scratch namespace). */
  enforcer?: Enforcer;
  statusEveryMs?: number;
}

export class LocalAccess {
  agent: AccessAgent | undefined;
  private source: LocalBundleSource<AccessBundle> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private identity: boolean;

  constructor(private readonly o: LocalAccessOptions) {
    this.identity =
      o.config.access.modeBeforeBundle === 'enforce' || existsSync(join(o.paths.dir, ACCESS_FILE));
  }

  /** Whether openvpn must run with `client-config-dir` + `ccd-exclusive` (decided before it starts). */
  get identityAtConnect(): boolean {
    return this.identity;
  }

  /**
   * Starts the agent when access is in use (a bundle exists or `enforce` before any) and applies the
   * current bundle, so the client-config-dir is complete before openvpn starts; then watches the file.
   */
  async start(): Promise<void> {
    if (this.identity) await this.activate();
    this.source = new LocalBundleSource<AccessBundle>({
      dir: this.o.paths.dir,
      fileName: ACCESS_FILE,
      parse: parseAccessBundleText,
      onError: (err) => {
        this.agent?.rejectBundle(err);
        this.writeStatus();
      },
      onBundle: async (b) => {
        if (!this.agent) await this.activate();
        await this.agent!.applyBundle(b);
        if (!this.identity) {
          this.identity = true;
          log.info('first access bundle: openvpn restarts with the client-config-dir');
          await this.o.onIdentityNeeded();
        }
        this.writeStatus();
      },
      pollMs: 250,
    });
    await this.source.start();
    this.timer = setInterval(() => this.writeStatus(), this.o.statusEveryMs ?? 5000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.source?.stop();
    if (this.timer) clearInterval(this.timer);
    await this.agent?.stop();
  }

  private async activate(): Promise<void> {
    const { config, paths } = this.o;
    const subnets = new TunnelSubnets(config.vpn.clientSubnet, config.vpn.clientSubnet6);
    this.agent = new AccessAgent({
      enforcer: this.o.enforcer ?? new NftEnforcer(),
      ccd: new ClientConfigDir(paths.ccdDir, subnets.netmask, (a) => subnets.address6(a)),
      clientsWithIpv6: (a) => subnets.withIpv6(a),
      connect: this.o.connect,
      reporter: new StoreAccessReporter(this.o.store),
      cluster: this.o.cluster,
      dnsServers: forTunnel(config.vpn, config.vpn.dns.servers),
      modeWithoutBundle: config.access.modeBeforeBundle,
      tun: config.access.tunInterface,
    });
    await this.agent.start();
    this.writeStatus();
  }

  /** Writes `access-status.json` (state + drop counter); never throws. */
  private writeStatus(): void {
    const agent = this.agent;
    if (!agent) return;
    agent
      .droppedPackets()
      .then((droppedPackets) => {
        const s: AccessStatusFile = {
          ...agent.status(),
          droppedPackets,
          updatedAt: new Date().toISOString(),
        };
        writeFileAtomic(join(this.o.paths.dir, ACCESS_STATUS_FILE), JSON.stringify(s, null, 2) + '\n', 0o644);
      })
      .catch((err: unknown) => log.debug({ err }, 'access status not written'));
  }
}
