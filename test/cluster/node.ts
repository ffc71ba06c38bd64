/**
 * The hook `npm run test-cluster -- up --with-node` loads: a real node (test/cluster/node/) joined to the
 * control plane that has just started, with CoreDNS as the cluster DNS. The node's processes are not
 * ClusterProcess objects: it keeps its own state (pids, mounts, cgroups, namespace) and `stopNode` (also
 * run by `down`) removes all of it.
 */
import { fileURLToPath } from 'node:url';
import { nodeDown } from './node/node.js';
import { startNodeWithDns } from './node/with-node.js';

export async function startNode(cp: { kubeconfig: string }): Promise<never[]> {
  await startNodeWithDns(fileURLToPath(new URL('../../../', import.meta.url)), cp.kubeconfig);
  return [];
}

export async function stopNode(): Promise<string[]> {
  return nodeDown();
}
