/**
 * Where the test node keeps things: the shared build cache (binaries and image archives, keyed by
 * version or content hash, outside the work tree) and the run directory of one node (state removed by
 * `down`).
 */
import { join } from 'node:path';
import { binaries } from '../binaries.js';

/** `${PODGATE_TEST_CLUSTER_CACHE:-/var/cache/podgate-test-cluster}`, shared with the control-plane build. */
export function cacheRoot(): string {
  return process.env.PODGATE_TEST_CLUSTER_CACHE || '/var/cache/podgate-test-cluster';
}

/** Pinned versions of what the node builds itself (the Kubernetes release comes from the control plane). */
export const NODE_VERSIONS = { coredns: 'v1.14.7' } as const;

export function corednsBinary(): string {
  return join(cacheRoot(), `coredns-${NODE_VERSIONS.coredns}`, 'bin', 'coredns');
}

/** Progress lines on stderr, so that `up` stays quiet on stdout apart from what a caller evals. */
export function say(msg: string): void {
  process.stderr.write(`[test-node] ${msg}\n`);
}

/** The kubectl built with the cluster (same release), so a machine needs no packaged client. */
export function kubectlBin(): string {
  return binaries().kubectl;
}
