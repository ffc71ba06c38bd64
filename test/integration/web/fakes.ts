/**
 * Stand-ins for the two optional dependencies of the web app that need parts no test machine has
 * running here: the OpenVPN management interface (a live server) and a Kubernetes API server. They
 * model only what the web layer calls; the real ones are tested by their owners.
 */
import type { ClusterStatus, DeployResult, DiscoveryResult } from '../../../src/cluster/index.js';
import type { EffectiveRevocation } from '../../../src/cluster/agent-status.js';
import { NotFound } from '../../../src/lib/errors.js';
import type { ClusterPort } from '../../../src/web/cluster-port.js';
import type { Session, SessionsProvider } from '../../../src/web/sessions-provider.js';

/** In-memory stand-in for the management interface (the real one needs a running openvpn). */
export class FakeSessions implements SessionsProvider {
  sessions: Session[] = [
    {
      cid: '7',
      commonName: 'alice.laptop',
      realAddress: '198.51.100.7:51000',
      virtualAddress: '10.140.0.2',
      bytesIn: 2048,
      bytesOut: 4096,
      connectedSince: new Date(Date.now() - 3_600_000),
    },
  ];
  async list(): Promise<Session[]> {
    return this.sessions;
  }
  async disconnect(cid: string): Promise<void> {
    if (!this.sessions.some((s) => s.cid === cid)) throw new NotFound(`no live session with id ${cid}`);
    this.sessions = this.sessions.filter((s) => s.cid !== cid);
  }
}

/** Stand-in for ClusterService with the DiscoveryResult shape; deploy reports three steps. */
export class FakeCluster implements ClusterPort {
  discovered: DiscoveryResult | undefined;
  release: (() => void) | undefined;
  async discover(): Promise<DiscoveryResult> {
    this.discovered = {
      discoveredAt: '2026-11-27T12:00:00.000Z',
      podCidrs: ['10.244.0.0/16'],
      podCidrSource: 'kubeadm-config ClusterConfiguration.networking.podSubnet',
      serviceCidrs: ['10.96.0.0/12'],
      serviceCidrSource: 'ServiceCIDR kubernetes',
      dnsServer: '10.96.0.10',
      clusterDomain: 'cluster.local',
      clusterDomainSource: 'kubeadm-config',
      nodeIps: ['172.18.12.21'],
      sources: { pods: [{ source: 'node podCIDRs', cidrs: ['10.244.1.0/24'] }], services: [] },
      warnings: [],
      overlaps: ['vpn.clientSubnet 10.96.0.0/16 overlaps service range 10.96.0.0/12'],
    };
    return this.discovered;
  }
  lastDiscovery(): DiscoveryResult | undefined {
    return this.discovered;
  }
  async manifests(): Promise<{ name: string; yaml: string }[]> {
    return [
      { name: '00-namespace.yaml', yaml: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: middleware\n' },
      { name: '10-service.yaml', yaml: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: podgate-vpn\n' },
    ];
  }
  failWith: Error | undefined;
  async deploy(onProgress: (line: string) => void = () => undefined): Promise<DeployResult> {
    if (this.failWith) throw this.failWith;
    onProgress('applied Namespace/middleware');
    await new Promise<void>((resolve) => (this.release = resolve));
    onProgress('rollout ready 1/1');
    return {
      objects: [{ object: 'Namespace/middleware', action: 'created' }],
      rollout: { ready: true, replicas: 1, readyReplicas: 1, changed: true },
    };
  }
  async status(): Promise<ClusterStatus & { newlyEffective: EffectiveRevocation[] }> {
    return {
      namespace: 'middleware',
      deployment: { replicas: 1, readyReplicas: 1, updatedReplicas: 1, generation: 2, observedGeneration: 2 },
      service: { type: 'NodePort', port: 1194, nodePort: 30030, protocol: 'UDP' },
      pods: [
        {
          name: 'podgate-7d9f',
          phase: 'Running',
          ready: true,
          podIP: '10.244.1.5',
          containers: [{ name: 'openvpn', ready: true, restarts: 0 }],
        },
      ],
      endpoints: ['10.244.1.5:1194/UDP'],
      agent: { lastAppliedCrlNumber: 3, effective: [], pending: [] },
      newlyEffective: [],
    };
  }
}
