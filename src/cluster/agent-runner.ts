/**
 * `podgate agent --cluster` put together: the agent core fed by the Secret watch, reporting to the
 * status ConfigMap, and the access side: the live cluster view (access-watch.ts) and the manager's
 * access bundle (Secret `podgate-access`) handed to the access consumer (the enforcer). Kept apart from
 * the CLI so tests run exactly this wiring.
 */
import type { AccessBundle, ClusterEvent } from '../access/types.js';
import { RevocationAgent, type AgentReporter } from '../openvpn/agent.js';
import { ManagementClient } from '../openvpn/management-client.js';
import { logger } from '../lib/logger.js';
import type { KubeApi } from './kube-api.js';
import { ConfigMapAgentReporter } from './agent-status.js';
import { OBJECT_NAMES } from './pod-layout.js';
import { SecretWatchSource } from './secret-watch-source.js';
import { ClusterAccessWatch } from './access-watch.js';
import { AccessBundleWatch } from './access-bundle-watch.js';

const log = logger.child({ module: 'cluster.agent' });

export interface ClusterAgentOptions {
  kube: KubeApi;
  namespace: string;
  /** Shown in the status ConfigMap (POD_NAME from the downward API). */
  podName?: string;
  caCertPem: string;
  /** The file openvpn's crl-verify reads (shared emptyDir in the pod). */
  crlFile: string;
  managementSocket: string;
  managementPassword?: string;
  /** Defaults to the status ConfigMap reporter. */
  reporter?: AgentReporter;
  retryMs?: number;
  /** Who applies access rules; default: one that only logs what it is given (no enforcement). */
  access?: AccessConsumer;
}

/**
 * What the agent hands the access side: cluster events as the watch emits them (in order), and each
 * newer access bundle. The enforcer implements it; it must fail closed on its own (DNS only until it
 * has both a bundle and a synced view, the last good sets when it cannot compile).
 */
export interface AccessConsumer {
  clusterEvent(e: ClusterEvent): void;
  bundle(b: AccessBundle): Promise<unknown> | void;
  stop?(): Promise<void> | void;
}

/** The stand-in until an enforcer is given: logs what it would act on, enforces nothing. */
export class LoggingAccessConsumer implements AccessConsumer {
  private objects = 0;
  clusterEvent(e: ClusterEvent): void {
    if (e.type === 'resync-start') this.objects = 0;
    else if (e.type === 'upsert') this.objects++;
    else if (e.type === 'resync-done') log.info({ objects: this.objects }, 'cluster view synced');
  }
  bundle(b: AccessBundle): void {
    log.info(
      { version: b.version, mode: b.mode, rules: b.rules.length, clients: b.clients.length },
      'access bundle',
    );
  }
}

export interface RunningClusterAgent {
  agent: RevocationAgent;
  source: SecretWatchSource;
  clusterWatch: ClusterAccessWatch;
  accessBundles: AccessBundleWatch;
  stop(): void;
}

export async function startClusterAgent(o: ClusterAgentOptions): Promise<RunningClusterAgent> {
  const agent = new RevocationAgent({
    caCertPem: o.caCertPem,
    crlFile: o.crlFile,
    connect: () =>
      ManagementClient.connect({ socketPath: o.managementSocket, password: o.managementPassword }),
    reporter: o.reporter ?? new ConfigMapAgentReporter(o.kube, o.namespace, o.podName),
  });
  const source = new SecretWatchSource({
    kube: o.kube,
    namespace: o.namespace,
    name: OBJECT_NAMES.crlSecret,
    retryMs: o.retryMs,
    onBundle: async (bundle) => {
      const r = await agent.apply(bundle);
      log.info(
        { crlNumber: r.crlNumber, changed: r.changed, killed: r.killed.length, pending: r.pending },
        'bundle applied',
      );
    },
  });
  // The access side first and without waiting: an API server that cannot be reached leaves the
  // enforcer on what it has (DNS only at the first start), and both watches retry on their own.
  const access: AccessConsumer = o.access ?? new LoggingAccessConsumer();
  const clusterWatch = new ClusterAccessWatch({ kube: o.kube, retryMs: o.retryMs });
  clusterWatch.start((e) => access.clusterEvent(e));
  const accessBundles = new AccessBundleWatch({
    kube: o.kube,
    namespace: o.namespace,
    retryMs: o.retryMs,
    onBundle: (b) => access.bundle(b),
  });
  accessBundles.begin();
  try {
    await source.start();
  } catch (err) {
    void clusterWatch.stop();
    accessBundles.stop();
    throw err;
  }
  log.info(
    { namespace: o.namespace, secret: OBJECT_NAMES.crlSecret, crlNumber: agent.crlNumber },
    'cluster agent watching',
  );
  return {
    agent,
    source,
    clusterWatch,
    accessBundles,
    stop() {
      source.stop();
      accessBundles.stop();
      void clusterWatch.stop();
      void access.stop?.();
      agent.stop();
    },
  };
}
