/**
 * Where the test cluster's binaries are: the cache that scripts/build-test-cluster.mjs fills, keyed by the
 * versions in test/cluster/versions.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from test/cluster or dist/test/cluster). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'test', 'cluster', 'versions.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('test/cluster/versions.json not found above ' + import.meta.url);
    dir = up;
  }
  return dir;
}

export interface Versions {
  kubernetes: string;
  etcd: string;
  helm: string;
  controlPlane: string[];
  node: string[];
}

export function versions(): Versions {
  return JSON.parse(readFileSync(join(repoRoot(), 'test', 'cluster', 'versions.json'), 'utf8')) as Versions;
}

export interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kubelet: string;
  kubeProxy: string;
  /** helm (helm.sh/helm/v4), for the chart tests */
  helm: string;
}

export function cacheRoot(): string {
  return process.env.PODGATE_TEST_CLUSTER_CACHE || '/var/cache/podgate-test-cluster';
}

export function binaries(): Binaries {
  const v = versions();
  const k8s = join(cacheRoot(), `k8s-${v.kubernetes}`, 'bin');
  // kubelet and kube-proxy are built only for the real node (`build-test-cluster.mjs --with-node`)
  const node = join(cacheRoot(), `k8s-${v.kubernetes}`, 'node-bin');
  return {
    etcd: join(cacheRoot(), `etcd-${v.etcd}`, 'bin', 'etcd'),
    kubeApiserver: join(k8s, 'kube-apiserver'),
    kubeControllerManager: join(k8s, 'kube-controller-manager'),
    kubeScheduler: join(k8s, 'kube-scheduler'),
    kubectl: join(k8s, 'kubectl'),
    kubelet: join(node, 'kubelet'),
    kubeProxy: join(node, 'kube-proxy'),
    helm: join(cacheRoot(), `helm-${v.helm}`, 'bin', 'helm'),
  };
}

/** Throws naming the missing binaries and the command that builds them. */
export function requireBinaries(
  names: (keyof Binaries)[] = Object.keys(binaries()) as (keyof Binaries)[],
): Binaries {
  const b = binaries();
  const missing = names.filter((n) => !existsSync(b[n])).map((n) => b[n]);
  if (missing.length > 0) {
    throw new Error(
      `test cluster binaries missing: ${missing.join(', ')}; build them with \`node scripts/build-test-cluster.mjs [--with-node]\` (npm test does it first)`,
    );
  }
  return b;
}
