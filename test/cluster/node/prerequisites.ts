/**
 * What the real-node e2e needs on this machine beyond the suites' usual prerequisites: the cluster
 * binaries (control plane and node, same release) and the Debian packages that run the node and build
 * its images. Empty when it can run.
 */
import { existsSync } from 'node:fs';
import { binaries } from '../binaries.js';

const PACKAGES = [
  ['containerd', '/usr/bin/containerd'],
  ['runc', '/usr/sbin/runc'],
  ['containernetworking-plugins', '/usr/lib/cni/bridge'],
  ['buildah', '/usr/bin/buildah'],
  ['debootstrap', '/usr/sbin/debootstrap'],
  ['conntrack', '/usr/sbin/conntrack'],
  ['busybox-static', '/bin/busybox'],
  ['iperf3', '/usr/bin/iperf3'],
  ['gcc', '/usr/bin/gcc'],
] as const;

export function nodeTestPrerequisites(): string[] {
  const missing: string[] = [];
  for (const [name, path] of Object.entries(binaries())) {
    if (!existsSync(path))
      missing.push(`${name} (${path}; built by \`node scripts/build-test-cluster.mjs --with-node\`)`);
  }
  for (const [pkg, path] of PACKAGES) if (!existsSync(path)) missing.push(`Debian package ${pkg} (${path})`);
  return missing;
}
