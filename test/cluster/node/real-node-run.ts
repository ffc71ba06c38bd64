/**
 * The start and end every real-node suite shares: wait for the machine's one test node (the harness's
 * lock, never broken), clear what a run that died left, start the control plane from sources with this
 * node (kubelet, containerd, kube-proxy, CNI bridge in its namespace) and CoreDNS, and at the end take it
 * all down and list whatever is left (the suite asserts that list is empty).
 */
import { ControlPlane } from '../control-plane.js';
import type { ImageOptions, ImageSet } from '../images/build-images.js';
import { acquireNodeLock, nodeDown, nodeHeldBy, nodeLeftovers, releaseNodeLock } from './node.js';
import { startNodeWithDns } from './with-node.js';
import { join } from 'node:path';
import { canUseNetns } from '../../helpers/netns.js';
import { nodeTestPrerequisites } from './prerequisites.js';

export interface RealNodeRun {
  cp: ControlPlane;
  /** The control plane's admin kubeconfig. */
  adminKc: string;
  images: ImageSet;
  /** Start-up times for the suite's printed figures (never asserted). */
  figures: Record<string, string>;
}

/**
 * The start of a real-node suite's `before`: what it needs is there (missing: a failure in CI, where the
 * e2e must run, a skip elsewhere), then the node's lock, taken for `suite` (waiting while another run
 * has it).
 */
export async function claimRealNode(ctx: Mocha.Context, suite: string): Promise<void> {
  const missing = nodeTestPrerequisites();
  if (!(await canUseNetns())) missing.push('root and network namespaces');
  if (missing.length > 0) {
    if (process.env.CI === 'true') throw new Error(`${suite} needs: ${missing.join('; ')}`);
    console.warn(`    skipped: ${missing.join('; ')}`);
    ctx.skip();
  }
  await waitForNodeLock(suite);
}

/**
 * Takes the node's lock for `holder`, waiting (up to `maxWaitMs`) while another run has it; past that,
 * fails naming the lock's holder.
 */
export async function waitForNodeLock(holder: string, maxWaitMs = 60 * 60_000): Promise<void> {
  const end = Date.now() + maxWaitMs;
  for (let round = 0; ; round++) {
    const busy = nodeHeldBy();
    if (!busy || Date.now() > end) return acquireNodeLock(holder); // throws naming the holder when busy
    if (round % 6 === 0) console.warn(`    waiting for the test node: ${busy.holder}`);
    await new Promise((r) => setTimeout(r, 10_000));
  }
}

/**
 * With the lock held: removes a node a dead run left, then starts the control plane (under `work`) with
 * the node and CoreDNS (building or finding the images first; `options` adds the optional images).
 */
export async function startRealNode(
  repo: string,
  work: string,
  options: ImageOptions = {},
): Promise<RealNodeRun> {
  await nodeDown();
  const t0 = Date.now();
  let nodeStarted = 0;
  let images: ImageSet | undefined;
  const cp = new ControlPlane({
    dir: join(work, 'cluster'),
    nodes: [],
    simulateKubelet: false,
    withNode: async (c) => {
      nodeStarted = Date.now();
      images = (await startNodeWithDns(repo, c.kubeconfig, options)).images;
      return [];
    },
  });
  try {
    await cp.start();
  } catch (err) {
    // the caller never sees this control plane: stop it here, or its processes outlive the suite
    await nodeDown().catch(() => undefined);
    await cp.stop({ removeDir: true }).catch(() => undefined);
    throw err;
  }
  const cached = Object.values(images!).every((i) => i.cached);
  return {
    cp,
    adminKc: cp.kubeconfig,
    images: images!,
    figures: {
      'control plane start': `${((nodeStarted - t0) / 1000).toFixed(1)} s`,
      [`node + CoreDNS start (images cached: ${String(cached)})`]: `${((Date.now() - nodeStarted) / 1000).toFixed(1)} s`,
    },
  };
}

/** Takes the node and the control plane down, gives the lock back; returns what could not be removed. */
export async function stopRealNode(cp: ControlPlane | undefined): Promise<string[]> {
  const problems = await nodeDown();
  await cp?.stop({ removeDir: true });
  releaseNodeLock();
  return [...problems, ...(await nodeLeftovers())];
}
