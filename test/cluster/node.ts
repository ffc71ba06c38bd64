/**
 * The hook `npm run test-cluster -- up --with-node` loads: a real node (test/cluster/node/) joined to the
 * control plane that has just started, with CoreDNS as the cluster DNS. The node's processes are not
 * ClusterProcess objects: it keeps its own state (pids, mounts, cgroups, namespace) and `stopNode` (also
 * run by `down`) removes all of it.
 */
import { fileURLToPath } from 'node:url';
import { acquireNodeLock, nodeDown, nodeHeldBy, releaseNodeLock } from './node/node.js';
import { startNodeWithDns } from './node/with-node.js';

export async function startNode(cp: { kubeconfig: string }): Promise<never[]> {
  acquireNodeLock('`npm run test-cluster -- up --with-node`', true);
  await startNodeWithDns(fileURLToPath(new URL('../../../', import.meta.url)), cp.kubeconfig);
  return [];
}

/** Removes the node unless a test run that is still alive has it (then says so). */
export async function stopNode(): Promise<string[]> {
  const busy = nodeHeldBy();
  if (busy && !busy.untilDown) return [`the node belongs to ${busy.holder} (pid ${busy.pid}); left running`];
  const problems = await nodeDown();
  releaseNodeLock(true);
  return problems;
}
