/** A dual-stack cluster view for access-rule tests (unit and real-nft ones share it). */
import type { ClusterEvent } from '../../src/access/types.js';

const up = (kind: 'namespace' | 'pod' | 'service', object: unknown): ClusterEvent =>
  ({ type: 'upsert', kind, object }) as ClusterEvent;

/** team-a: one dual-stack pod and a dual-stack Service in front of it. */
export function dualStackWorld(): ClusterEvent[] {
  return [
    up('namespace', { name: 'team-a', labels: {} }),
    up('pod', {
      uid: 'a1',
      namespace: 'team-a',
      name: 'a1',
      labels: { app: 'web' },
      ips: ['10.244.1.5', 'fd00:10:244:1::5'],
    }),
    up('service', {
      namespace: 'team-a',
      name: 'web',
      labels: {},
      clusterIPs: ['10.96.0.20', 'fd00:10:96::20'],
      ports: [{ protocol: 'TCP', port: 80 }],
      selector: { app: 'web' },
    }),
  ];
}
