/**
 * Stand-ins for two optional dependencies of the web app. FakeSessions models the OpenVPN management
 * interface for pages that need a live server's session list. BrokenCluster is a ClusterPort for the
 * one cluster fault no API server can be made to cause (see its comment); the cluster page and the
 * deploy button otherwise run against the real control plane.
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

/**
 * A ClusterPort whose deploy fails with the given error; its other methods are never called. Only for
 * the one case no API server can produce: an error that is not an AppError (a bug in podgate), whose
 * message the web app must not show. Every other cluster page and deploy test uses the real
 * ClusterService against the real control plane (admin.test.ts).
 */
export class BrokenCluster implements ClusterPort {
  constructor(private readonly error: Error) {}
  async discover(): Promise<DiscoveryResult> {
    throw this.error;
  }
  async lastDiscovery(): Promise<DiscoveryResult | undefined> {
    return undefined;
  }
  async manifests(): Promise<{ name: string; yaml: string }[]> {
    throw this.error;
  }
  async deploy(): Promise<DeployResult> {
    throw this.error;
  }
  async status(): Promise<ClusterStatus & { newlyEffective: EffectiveRevocation[] }> {
    throw this.error;
  }
}
