/**
 * ClusterService: what the web app and the CLI use for the cluster (discover, manifests, deploy, status).
 * Kubernetes is reached only through a KubeApi, made lazily so that `manifests` works with no cluster.
 */
import type { AccessMode } from '../access/types.js';
import type { Config } from '../config/schema.js';
import { logger } from '../lib/logger.js';
import { BadRequest } from '../lib/errors.js';
import { loadTemplate } from '../lib/templates.js';
import type { RevocationBundle } from '../openvpn/revocation-bundle.js';
import { effectiveNetwork } from '../services/network.js';
import type { AuditStore, SettingsStore } from '../store/types.js';
import { syncAgentStatus, type EffectiveRevocation } from './agent-status.js';
import { readReplicas } from './replica-status.js';
import { ReplicaSessionHistory, type SessionSink } from './agent-sessions.js';
import { applyAll, type DeployResult } from './deploy.js';
import { discover, findRangeOverlaps, lastDiscovery, type DiscoveryResult } from './discovery.js';
import { refOf, type KubeApi, type KubeObject } from './kube-api.js';
import { OBJECT_NAMES } from './pod-layout.js';
import { crlKeyIds } from './ownership.js';
import { buildManifests, manifestFiles, type ServerMaterial } from './manifests.js';
import { readClusterStatus, readServerPodIps, type ClusterStatus } from './status.js';
import { SecretCrlPublisher } from './secret-publisher.js';
import { createKubeApi, loadKubeConfig } from './kube-client.js';
import { connectKube, type KubeConnection } from './kube-connection.js';
import { ReplicaSessionsProvider } from './replica-sessions.js';
import { pollEvery } from '../lib/poll.js';

const log = logger.child({ module: 'cluster' });

export interface ClusterServiceDeps {
  config: Config;
  store: SettingsStore & AuditStore;
  server: { ensure(): Promise<ServerMaterial> };
  revocation: { bundle(): Promise<RevocationBundle> };
  /** The access mode in force (config, else the data dir): the pod's start table and identity check. */
  access?: { mode(): Promise<{ mode: AccessMode }> };
  /** Builds the KubeApi on first use (kubeconfig, in-cluster...). */
  kube: () => KubeApi;
  /** Releases what the KubeApi holds (an SSH tunnel to the API server). */
  closeKube?: () => Promise<void>;
  /** Records the server pods' session readings (serve: the UsageService); absent: not recorded. */
  sessions?: SessionSink;
  /** Rollout wait; default 180 s. */
  rolloutTimeoutMs?: number;
  pollMs?: number;
}

export class ClusterService {
  private kubeApi: KubeApi | undefined;
  /** The last session reading recorded per pod. */
  private history: ReplicaSessionHistory | undefined;
  constructor(private readonly deps: ClusterServiceDeps) {}

  private get kube(): KubeApi {
    this.kubeApi ??= this.deps.kube();
    return this.kubeApi;
  }

  /** Closes the connection to the API server (the bastion tunnel, if any). */
  async close(): Promise<void> {
    if (this.kubeApi) await this.deps.closeKube?.();
  }

  /** Reads the cluster's networks, DNS and nodes, and stores the result (settings `cluster.discovery`). */
  discover(): Promise<DiscoveryResult> {
    return discover(this.deps.config, { kube: this.kube, settings: this.deps.store });
  }

  async lastDiscovery(): Promise<DiscoveryResult | undefined> {
    return await lastDiscovery(this.deps.store);
  }

  /** The objects deploy applies, built from config, the stored discovery, the server identity and the CRL. */
  async objects(): Promise<KubeObject[]> {
    const { config, store } = this.deps;
    const discovered = await this.lastDiscovery();
    if (!discovered && config.vpn.routes.pods.length === 0 && config.vpn.routes.services.length === 0) {
      // A server that pushes no route to the cluster is useless; say what to do instead of emitting it.
      throw new BadRequest(
        'no cluster ranges known: run `podgate k8s discover` first, or set vpn.routes.pods and vpn.routes.services',
        'vpn.routes',
      );
    }
    const problems = findRangeOverlaps(config, discovered);
    if (problems.length > 0) {
      throw new BadRequest(
        `address ranges overlap: ${problems.join('; ')} (change vpn.clientSubnet / vpn.officeLans or set vpn.routes)`,
        'vpn.clientSubnet',
      );
    }
    const net = await effectiveNetwork(config, store);
    return buildManifests({
      config,
      server: await this.deps.server.ensure(),
      bundle: await this.deps.revocation.bundle(),
      network: {
        podCidrs: net.podCidrs,
        serviceCidrs: net.serviceCidrs,
        extraRoutes: net.extraRoutes,
        dnsServers: net.dnsServers,
        dnsDomain: net.dnsDomain,
        searchDomains: net.searchDomains,
      },
      serverConfTemplate: loadTemplate('server.conf.hbs'),
      accessMode: (await this.deps.access?.mode())?.mode,
    });
  }

  /** YAML files for `kubectl apply -f DIR`, in apply order. They hold the server's private key. */
  async manifests(): Promise<{ name: string; yaml: string }[]> {
    return manifestFiles(await this.objects());
  }

  /** Discovers, builds and server-side applies everything, then waits for the rollout. */
  async deploy(
    onProgress: (line: string) => void = () => undefined,
    o: { takeOver?: boolean } = {},
  ): Promise<DeployResult> {
    const d = await this.discover();
    onProgress(
      `discovered pods ${d.podCidrs.join(', ') || '?'} (${d.podCidrSource}), services ${d.serviceCidrs.join(', ') || '?'} (${d.serviceCidrSource}), DNS ${d.dnsServer ?? '?'}, nodes ${d.nodeIps.join(', ') || '?'}`,
    );
    for (const w of d.warnings) onProgress(`warning: ${w}`);
    const objects = await this.objects();
    if (o.takeOver)
      onProgress('taking over objects another podgate manager (another CA) may own (--take-over)');
    return applyAll(objects, {
      kube: this.kube,
      onProgress,
      owner: { keyIds: await this.ownKeyIds(), ...(o.takeOver ? { takeOver: true } : {}) },
      rolloutTimeoutMs: this.deps.rolloutTimeoutMs,
      pollMs: this.deps.pollMs,
    });
  }

  /** This manager's CA key ids, from the CRL it publishes (issuing CA first, one per trusted CA). */
  private async ownKeyIds(): Promise<string[]> {
    return crlKeyIds((await this.deps.revocation.bundle()).crlPem);
  }

  /** Pods, endpoints and the agent's last applied CRL number; also records newly effective revocations. */
  async status(): Promise<ClusterStatus & { newlyEffective: EffectiveRevocation[] }> {
    const ns = this.deps.config.kubernetes.namespace;
    const bundle = await this.deps.revocation.bundle();
    const status = await readClusterStatus(this.kube, ns, bundle.crlNumber, crlKeyIds(bundle.crlPem));
    const newlyEffective = await syncAgentStatus(this.kube, ns, this.deps.store);
    return { ...status, newlyEffective };
  }

  /** The ready server pods' IPs (the devices page's connection check probes them). */
  serverPodIps(): Promise<string[]> {
    return readServerPodIps(this.kube, this.deps.config.kubernetes.namespace);
  }

  /**
   * Turns the agent's reports into audit rows now, and (with a session sink) the pods' session readings
   * into the session history (the web app calls this on a timer).
   */
  async syncAgentStatus(): Promise<EffectiveRevocation[]> {
    const ns = this.deps.config.kubernetes.namespace;
    const written = await syncAgentStatus(this.kube, ns, this.deps.store);
    if (this.deps.sessions) await this.syncSessions();
    return written;
  }

  /** Records each server replica's latest reported sessions (its Lease; see cluster/agent-sessions.ts). */
  async syncSessions(now = new Date()): Promise<{ recorded: string[]; gone: string[] }> {
    if (!this.deps.sessions) return { recorded: [], gone: [] };
    this.history ??= new ReplicaSessionHistory(this.deps.sessions);
    const replicas = await readReplicas(this.kube, this.deps.config.kubernetes.namespace, now);
    return this.history.sync(replicas, now);
  }

  /**
   * Polls the agent's status ConfigMap and writes `revocation.effective` audit rows as they appear
   * (for `serve`: the leader starts it). Errors are logged, never thrown; `stop` waits for a running sync.
   */
  watchAgentStatus(intervalMs = 5000): { stop(): Promise<void> } {
    return pollEvery(
      intervalMs,
      () => this.syncAgentStatus(),
      (err) => log.warn({ err: String(err) }, 'agent status sync failed'),
    );
  }

  /**
   * Keeps a deployed server's material current between deploys. The server certificate renews itself
   * (ServerIdentityService.ensure, 30 days before expiry) and `ca rotate` / `ca retire-old` change the
   * CA bundle; when the podgate-server Secret in the cluster no longer holds what podgate would deploy
   * now, the Secret, the server ConfigMap and the Deployment are applied (server-side apply, field
   * manager podgate). The pod template's checksum annotation covers the Secret's data, so the
   * Deployment rolls a new ReplicaSet. Clients need nothing: the CA they trust and the server name are
   * unchanged by a renewal. Nothing is applied when the Secret is current or podgate was never deployed
   * here (no Deployment). The CRL Secret is left to the CRL publisher.
   */
  async syncServerMaterial(
    onProgress: (line: string) => void = () => undefined,
  ): Promise<{ rolled: boolean; result?: DeployResult }> {
    const namespace = this.deps.config.kubernetes.namespace;
    const live = await this.kube.get({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: OBJECT_NAMES.app,
      namespace,
    });
    if (!live) return { rolled: false }; // never deployed here: nothing to keep current
    const objects = await this.objects(); // ensure(): renews the server certificate when it is due
    const pick = (kind: string, name: string) =>
      objects.find((o) => o.kind === kind && o.metadata.name === name)!;
    const secret = pick('Secret', OBJECT_NAMES.serverSecret);
    const configMap = pick('ConfigMap', OBJECT_NAMES.app);
    const deployment = pick('Deployment', OBJECT_NAMES.app);
    const liveSecret = await this.kube.get(refOf(secret));
    const want = (secret as { data?: Record<string, string> }).data ?? {};
    const have = (liveSecret as { data?: Record<string, string> } | undefined)?.data ?? {};
    const current =
      Object.keys(want).length === Object.keys(have).length &&
      Object.entries(want).every(([k, v]) => have[k] === v);
    if (current) return { rolled: false };
    log.info({ namespace }, 'server material changed; rolling the pod');
    const result = await applyAll([secret, configMap, deployment], {
      kube: this.kube,
      onProgress,
      owner: { keyIds: await this.ownKeyIds() },
      rolloutTimeoutMs: this.deps.rolloutTimeoutMs,
      pollMs: this.deps.pollMs,
    });
    await this.deps.store.appendAudit({
      actor: 'system',
      action: 'k8s.server-material',
      target: `${namespace}/${OBJECT_NAMES.app}`,
      result: 'ok',
      details: { objects: result.objects, ready: result.rollout.ready },
    });
    return { rolled: true, result };
  }

  /**
   * Runs syncServerMaterial every `intervalMs` (for `serve`: the renewal happens in the process that
   * holds the CA, and the pod follows it without a `k8s deploy`). Errors are logged, never thrown.
   */
  watchServerMaterial(intervalMs = 5 * 60_000): { stop(): Promise<void> } {
    return pollEvery(
      intervalMs,
      () => this.syncServerMaterial(),
      (err) => log.warn({ err: String(err) }, 'server material sync failed'),
    );
  }

  /** Live sessions of every server replica, from their Leases (the web app's SessionsProvider). */
  sessions(): ReplicaSessionsProvider {
    return new ReplicaSessionsProvider({
      kube: () => this.kube,
      namespace: this.deps.config.kubernetes.namespace,
    });
  }

  /** The publisher RevocationService should call in cluster mode. */
  publisher(): SecretCrlPublisher {
    return new SecretCrlPublisher(() => this.kube, this.deps.config.kubernetes.namespace);
  }
}

/**
 * The ClusterService of an AppContext, with the real Kubernetes client (kubeconfig from
 * kubernetes.kubeconfig, else KUBECONFIG / ~/.kube/config / in-cluster), made on first use.
 */
export function clusterServiceFor(
  ctx: Pick<ClusterServiceDeps, 'config' | 'store' | 'server' | 'revocation' | 'access'>,
  env: NodeJS.ProcessEnv,
  sessions?: SessionSink,
): ClusterService {
  return new ClusterService({
    config: ctx.config,
    store: ctx.store,
    server: ctx.server,
    revocation: ctx.revocation,
    access: ctx.access,
    ...(sessions ? { sessions } : {}),
    ...lazyConnection(ctx.config, env),
  });
}

function lazyConnection(
  config: Config,
  env: NodeJS.ProcessEnv,
): Pick<ClusterServiceDeps, 'kube' | 'closeKube'> {
  let connection: KubeConnection | undefined;
  return {
    kube: () => (connection ??= connectKube(config, env)).api,
    closeKube: async () => connection?.close(),
  };
}

export type { DiscoveryResult, DeployResult, ClusterStatus };
export { discover, findRangeOverlaps } from './discovery.js';
export { buildManifests, manifestFiles } from './manifests.js';
export { createKubeApi, loadKubeConfig };
export { SecretWatchSource } from './secret-watch-source.js';
export { SecretCrlPublisher } from './secret-publisher.js';
export { ConfigMapAgentReporter, syncAgentStatus } from './agent-status.js';
export { formatStatus } from './status.js';
export { ReplicaSessionsProvider } from './replica-sessions.js';
