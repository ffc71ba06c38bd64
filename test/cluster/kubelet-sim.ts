/**
 * A kubelet SIMULATOR for the test cluster's registered nodes (no containers run): pods that the real
 * scheduler bound to a simulated node are reported Running and Ready with an IP from the node's podCIDR,
 * and pods being deleted there are removed, so Deployments, ReplicaSets and rollouts progress for real in
 * the API server and controllers. Everything before binding (admission, PodSecurity, ReplicaSet
 * FailedCreate, scheduling) is the real control plane. A real kubelet (`up --with-node`) replaces this.
 *
 * Run as its own process: node kubelet-sim.js DIR SERVER NODE=CIDR ...
 * (client certificate admin.crt/admin.key and ca.crt from DIR).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rest, type RestCreds } from './kube-rest.js';

interface Pod {
  metadata: { name: string; namespace: string; deletionTimestamp?: string; uid: string };
  spec: { nodeName?: string; hostNetwork?: boolean; containers: { name: string; image: string }[] };
  status?: { phase?: string; podIP?: string };
}

export interface SimNode {
  name: string;
  podCIDR: string;
  internalIP: string;
}

export function parseSimNode(arg: string): SimNode {
  const [name, podCIDR, internalIP] = arg.split('=');
  if (!name || !podCIDR || !internalIP) throw new Error(`bad node spec ${arg} (want NAME=CIDR=IP)`);
  return { name, podCIDR, internalIP };
}

/** Hands out pod IPs .2, .3, ... of a node's /24 (enough for the tests; wraps at .254). */
function ipAllocator(cidr: string): () => string {
  const base = cidr.split('/')[0].split('.').map(Number);
  let next = 2;
  return () => {
    const ip = `${base[0]}.${base[1]}.${base[2]}.${next}`;
    next = next >= 254 ? 2 : next + 1;
    return ip;
  };
}

export async function simulate(creds: RestCreds, nodes: SimNode[], intervalMs = 300): Promise<never> {
  const byName = new Map(nodes.map((n) => [n.name, { ...n, nextIp: ipAllocator(n.podCIDR) }]));
  const handled = new Set<string>();
  for (;;) {
    try {
      const res = await rest<{ items?: Pod[] }>(creds, 'GET', '/api/v1/pods');
      for (const pod of res.body.items ?? []) {
        const node = pod.spec.nodeName ? byName.get(pod.spec.nodeName) : undefined;
        if (!node) continue;
        const path = `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`;
        if (pod.metadata.deletionTimestamp) {
          await rest(creds, 'DELETE', path, {
            kind: 'DeleteOptions',
            apiVersion: 'v1',
            gracePeriodSeconds: 0,
          });
          continue;
        }
        if (pod.status?.phase === 'Running' || handled.has(pod.metadata.uid)) continue;
        const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        const ip = pod.spec.hostNetwork ? node.internalIP : node.nextIp();
        const cond = (type: string) => ({ type, status: 'True', lastTransitionTime: now });
        const patch = {
          status: {
            phase: 'Running',
            hostIP: node.internalIP,
            hostIPs: [{ ip: node.internalIP }],
            podIP: ip,
            podIPs: [{ ip }],
            startTime: now,
            conditions: [
              'PodReadyToStartContainers',
              'Initialized',
              'ContainersReady',
              'Ready',
              'PodScheduled',
            ].map(cond),
            containerStatuses: pod.spec.containers.map((c) => ({
              name: c.name,
              image: c.image,
              imageID: '',
              ready: true,
              started: true,
              restartCount: 0,
              state: { running: { startedAt: now } },
            })),
          },
        };
        const r = await rest(creds, 'PATCH', `${path}/status`, patch, 'application/merge-patch+json');
        if (r.status === 200) handled.add(pod.metadata.uid);
      }
    } catch {
      // the API server is down (a fault test stops it): try again on the next round
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const [dir, server, ...nodeArgs] = process.argv.slice(2);
if (dir && server && process.argv[1]?.endsWith('kubelet-sim.js')) {
  const creds: RestCreds = {
    server,
    ca: readFileSync(join(dir, 'ca.crt')),
    cert: readFileSync(join(dir, 'admin.crt')),
    key: readFileSync(join(dir, 'admin.key')),
  };
  console.log(`kubelet simulator for ${nodeArgs.join(' ')}`);
  void simulate(creds, nodeArgs.map(parseSimNode));
}
