/**
 * `up --with-node` in one call: build (or find cached) CoreDNS and the images, start the node against
 * the running control plane, then run CoreDNS as the cluster DNS and wait for it to answer.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { requireBinaries } from '../binaries.js';
import { dirname, join } from 'node:path';
import { exec } from '../../../src/lib/exec.js';
import { buildImages, type ImageOptions, type ImageSet } from '../images/build-images.js';
import { corednsObjects } from '../coredns/manifests.js';
import { kubectlSlices, waitForService } from './service-ready.js';
import { nodeUp, NODE_IP, NODE_NETNS } from './node.js';
import { corednsBinary, kubectlBin, NODE_VERSIONS, say } from './paths.js';

export const CLUSTER_DNS_IP = '10.96.0.10';

/** CoreDNS from test/cluster/coredns at the pinned version, built once into the cache. */
export async function ensureCoredns(repoRoot: string): Promise<string> {
  const bin = corednsBinary();
  if (existsSync(bin)) return bin;
  mkdirSync(dirname(bin), { recursive: true });
  say(`building CoreDNS ${NODE_VERSIONS.coredns} from its Go module (a few minutes the first time)`);
  await exec(['nice', '-n', '15', 'go', 'build', '-trimpath', '-ldflags=-s -w', '-o', `${bin}.tmp`, '.'], {
    cwd: join(repoRoot, 'test', 'cluster', 'coredns'),
    env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
    timeoutMs: 60 * 60_000,
  });
  renameSync(`${bin}.tmp`, bin);
  return bin;
}

export async function buildNodeImages(repoRoot: string, options: ImageOptions = {}): Promise<ImageSet> {
  const coredns = ensureCoredns(repoRoot);
  coredns.catch(() => undefined); // awaited by buildImages; not an unhandled rejection meanwhile
  return buildImages(repoRoot, () => coredns, options);
}

/** Starts the node with every image of the set imported (`options`: the optional ones a suite needs). */
export async function startNodeWithDns(
  repoRoot: string,
  kubeconfig: string,
  options: ImageOptions = {},
): Promise<{ nodeIp: string; netns: string; images: ImageSet }> {
  const images = await buildNodeImages(repoRoot, options);
  const bins = requireBinaries(['kubelet', 'kubeProxy']);
  await nodeUp({
    kubeconfig,
    kubelet: bins.kubelet,
    kubeProxy: bins.kubeProxy,
    images: Object.values(images).map((i) => i.archive),
    sandboxImage: images.pause.ref,
    clusterDns: CLUSTER_DNS_IP,
  });
  const list = { apiVersion: 'v1', kind: 'List', items: corednsObjects(images.coredns.ref, CLUSTER_DNS_IP) };
  await exec([kubectlBin(), '--kubeconfig', kubeconfig, 'apply', '-f', '-'], { input: JSON.stringify(list) });
  await exec(
    [
      kubectlBin(),
      '--kubeconfig',
      kubeconfig,
      '-n',
      'kube-system',
      'rollout',
      'status',
      'deployment/coredns',
      '--timeout=180s',
    ],
    { timeoutMs: 200_000 },
  );
  // kube-dns is a fresh Service: Ready pods are not yet published endpoints or kube-proxy rules
  await waitForService({
    service: 'kube-system/kube-dns',
    slices: kubectlSlices(kubectlBin(), kubeconfig, 'kube-system', 'kube-dns'),
  });
  return { nodeIp: NODE_IP, netns: NODE_NETNS, images };
}
