/**
 * `podgate agent --cluster` put together: the agent core fed by the Secret watch, reporting to the
 * status ConfigMap. Kept apart from the CLI so tests run exactly this wiring against the fake API server.
 */
import { RevocationAgent, type AgentReporter } from '../openvpn/agent.js';
import { ManagementClient } from '../openvpn/management-client.js';
import { logger } from '../lib/logger.js';
import type { KubeApi } from './kube-api.js';
import { ConfigMapAgentReporter } from './agent-status.js';
import { OBJECT_NAMES } from './pod-layout.js';
import { SecretWatchSource } from './secret-watch-source.js';

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
}

export interface RunningClusterAgent {
  agent: RevocationAgent;
  source: SecretWatchSource;
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
  await source.start();
  log.info(
    { namespace: o.namespace, secret: OBJECT_NAMES.crlSecret, crlNumber: agent.crlNumber },
    'cluster agent watching',
  );
  return {
    agent,
    source,
    stop() {
      source.stop();
      agent.stop();
    },
  };
}
