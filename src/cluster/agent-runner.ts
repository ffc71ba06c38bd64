/**
 * `podgate agent --cluster` put together: the revocation agent fed by the `podgate-crl` watch,
 * reporting to the status ConfigMap; and the access agent (openvpn/access-agent.ts: nftables table,
 * client-config-dir, sessions of dropped devices) fed by the `podgate-access` watch and the live cluster
 * view (access-watch.ts). Kept apart from the CLI so tests run exactly this wiring.
 */
import type { AccessMode } from '../access/types.js';
import { RevocationAgent, type AgentReporter } from '../openvpn/agent.js';
import { AccessAgent, type AccessReporter } from '../openvpn/access-agent.js';
import { ClientConfigDir } from '../openvpn/client-config-dir.js';
import { ManagementClient } from '../openvpn/management-client.js';
import { NftEnforcer, type Enforcer } from '../openvpn/nft-enforcer.js';
import { ProbeResponder } from '../openvpn/probe-responder.js';
import { TunnelSubnets } from '../lib/tunnel-subnets.js';
import { logger } from '../lib/logger.js';
import type { KubeApi } from './kube-api.js';
import { ConfigMapAgentReporter } from './agent-status.js';
import { OBJECT_NAMES } from './pod-layout.js';
import { SecretWatchSource } from './secret-watch-source.js';
import { ManagementSessionsProvider } from '../openvpn/sessions-provider.js';
import { ReplicaReporter } from './replica-reporter.js';
import { ClusterAccessWatch } from './access-watch.js';
import { AccessBundleWatch } from './access-bundle-watch.js';
import { IpNeighbours } from '../openvpn/neighbours.js';

const log = logger.child({ module: 'cluster.agent' });

/** The access side of the pod's agent (absent: only revocations, as before access rules). */
export interface ClusterAccessOptions {
  /** config access.modeBeforeBundle: what the table allows before the first bundle (the deploy's mode). */
  modeWithoutBundle: AccessMode;
  /** Cluster DNS servers (IPv6 ones only with clientSubnet6): always reachable on port 53. */
  dnsServers: string[];
  /** config access.tunInterface. */
  tun: string;
  /** The shared client-config-dir openvpn reads (`ccd-exclusive` in enforce). */
  ccdDir: string;
  /** vpn.clientSubnet: the netmask of the addresses the ccd files give. */
  clientSubnet: string;
  /** vpn.clientSubnet6 (dual stack): ccd files also give each device its IPv6 address, rules cover it. */
  clientSubnet6?: string;
  /** Injected by tests (nft in a scratch namespace); default `nft` in the pod's namespace. */
  enforcer?: Enforcer;
}

export interface ClusterAgentOptions {
  kube: KubeApi;
  namespace: string;
  /** Shown in the status ConfigMap (POD_NAME from the downward API); names the replica's Lease. */
  podName?: string;
  /** The pod's uid (POD_UID from the downward API): the replica Lease's owner. */
  podUid?: string;
  /** Report this replica through its Lease (replica-status.ts); default: when podName is given. */
  replicaReport?: boolean | { pollMs?: number; sessionsMs?: number; heartbeatMs?: number };
  caCertPem: string;
  /** The file openvpn's crl-verify reads (shared emptyDir in the pod). */
  crlFile: string;
  managementSocket: string;
  managementPassword?: string;
  /** Defaults to the status ConfigMap reporter. */
  reporter?: AgentReporter;
  retryMs?: number;
  access?: ClusterAccessOptions;
  /** "Check my connection": the probe listener on the pod IP (connectionCheck.port; absent or 0: off). */
  probe?: { port: number; allowedOrigin: string | undefined };
}

export interface RunningClusterAgent {
  agent: RevocationAgent;
  source: SecretWatchSource;
  access?: { agent: AccessAgent; cluster: ClusterAccessWatch; bundles: AccessBundleWatch };
  replica?: ReplicaReporter;
  probe?: ProbeResponder;
  stop(): Promise<void>;
}

/** Sessions the access agent ended go to the pod's log (the manager audits the rule change itself). */
const logAccessReporter: AccessReporter = {
  sessionsEnded: (r) => {
    for (const k of r.kills)
      log.info({ version: r.version, commonName: k.commonName, reason: k.reason }, 'access: session ended');
  },
};

/**
 * Starts the access agent (its table before anything else: an existing one is kept, none becomes DNS
 * only in enforce), the cluster view and the bundle watch, without waiting for the API server: both
 * watches retry on their own and the table stays as it is meanwhile.
 */
async function startAccess(
  o: ClusterAgentOptions,
  a: ClusterAccessOptions,
  connect: () => Promise<ManagementClient>,
): Promise<NonNullable<RunningClusterAgent['access']>> {
  const cluster = new ClusterAccessWatch({ kube: o.kube, retryMs: o.retryMs });
  const subnets = new TunnelSubnets(a.clientSubnet, a.clientSubnet6);
  const agent = new AccessAgent({
    enforcer: a.enforcer ?? new NftEnforcer(),
    ccd: new ClientConfigDir(a.ccdDir, subnets.netmask, (ip) => subnets.address6(ip)),
    clientsWithIpv6: (ips) => subnets.withIpv6(ips),
    connect,
    reporter: logAccessReporter,
    cluster,
    dnsServers: a.dnsServers,
    modeWithoutBundle: a.modeWithoutBundle,
    tun: a.tun,
    neighbours: new IpNeighbours(),
  });
  await agent.start();
  const bundles = new AccessBundleWatch({
    kube: o.kube,
    namespace: o.namespace,
    retryMs: o.retryMs,
    onBundle: async (b) => {
      const r = await agent.applyBundle(b);
      log.info(
        { version: b.version, applied: r.applied, reason: r.reason, kills: r.kills.length },
        'access bundle',
      );
    },
    onError: (err) => agent.rejectBundle(err),
  });
  bundles.begin();
  return { agent, cluster, bundles };
}

export async function startClusterAgent(o: ClusterAgentOptions): Promise<RunningClusterAgent> {
  const connect = () =>
    ManagementClient.connect({ socketPath: o.managementSocket, password: o.managementPassword });
  let crlAppliedAt: Date | undefined;
  const agent = new RevocationAgent({
    caCertPem: o.caCertPem,
    crlFile: o.crlFile,
    connect,
    reporter: o.reporter ?? new ConfigMapAgentReporter(o.kube, o.namespace, o.podName),
  });
  const source = new SecretWatchSource({
    kube: o.kube,
    namespace: o.namespace,
    name: OBJECT_NAMES.crlSecret,
    retryMs: o.retryMs,
    onBundle: async (bundle) => {
      const r = await agent.apply(bundle);
      if (r.changed) crlAppliedAt = new Date();
      log.info(
        { crlNumber: r.crlNumber, changed: r.changed, killed: r.killed.length, pending: r.pending },
        'bundle applied',
      );
    },
  });
  // Answers from the pod IP: the devices page's check that the pod route works (lib/connection-probe.ts).
  let probe: ProbeResponder | undefined;
  if (o.probe && o.probe.port > 0) {
    probe = new ProbeResponder({ host: '0.0.0.0', port: o.probe.port, allowedOrigin: o.probe.allowedOrigin });
    probe.start();
  }
  // The access side first and without waiting for the API server (see startAccess).
  const access = o.access ? await startAccess(o, o.access, connect) : undefined;
  try {
    await source.start();
  } catch (err) {
    // With the access side, exiting would leave it to the kubelet's growing restart backoff to try
    // again: keep running (the table stays as it is) and let the watch retry on its own.
    if (!access) throw err;
    log.warn({ err: String(err) }, 'podgate-crl not readable yet; retrying in the background');
    source.begin();
  }
  log.info(
    { namespace: o.namespace, secret: OBJECT_NAMES.crlSecret, crlNumber: agent.crlNumber },
    'cluster agent watching',
  );
  const replica = startReplicaReport(o, agent, access?.agent, () => crlAppliedAt);
  return {
    agent,
    source,
    access,
    replica,
    probe,
    async stop() {
      replica?.stop();
      await probe?.stop();
      source.stop();
      access?.bundles.stop();
      await access?.agent.stop(); // the table and the ccd files stay: nothing opens
      agent.stop();
    },
  };
}

/** The replica's Lease (replica-reporter.ts): CRL number in force, rules version, sessions. */
function startReplicaReport(
  o: ClusterAgentOptions,
  agent: RevocationAgent,
  access: AccessAgent | undefined,
  crlAppliedAt: () => Date | undefined,
): ReplicaReporter | undefined {
  const want = o.replicaReport ?? Boolean(o.podName);
  if (!want || !o.podName) return undefined;
  const timing = typeof want === 'object' ? want : {};
  const sessions = new ManagementSessionsProvider({
    socketPath: o.managementSocket,
    password: o.managementPassword,
  });
  const reporter = new ReplicaReporter({
    kube: o.kube,
    namespace: o.namespace,
    pod: { name: o.podName, ...(o.podUid ? { uid: o.podUid } : {}) },
    sessions,
    ...(access ? { dropped: () => access.droppedPackets() } : {}),
    state: () => {
      const a = access?.status();
      return {
        ...(agent.crlNumber !== undefined ? { crlNumber: agent.crlNumber } : {}),
        ...(crlAppliedAt() ? { crlAppliedAt: crlAppliedAt()!.toISOString() } : {}),
        ...(a?.version != null ? { rulesVersion: a.version } : {}),
        ...(a ? { accessState: a.state } : {}),
      };
    },
    ...timing,
  });
  reporter.start();
  return reporter;
}
