/**
 * Session history in cluster mode against the real API server: the pod agent's ReplicaReporter writes
 * its sessions into its real replica Lease (the one channel the sessions view, `podgate sessions` and
 * /metrics read too), and the manager's ClusterService records them through the UsageService into the
 * real SQLite store (the recorder `server run` uses), ends sessions that left a report, and ends the
 * sessions of a replica whose Lease is gone (deleted with its pod).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterService } from '../../../src/cluster/index.js';
import { ReplicaReporter } from '../../../src/cluster/replica-reporter.js';
import { replicaLeaseRef } from '../../../src/cluster/replica-status.js';
import type { KubeApi } from '../../../src/cluster/kube-api.js';
import { OBJECT_NAMES } from '../../../src/cluster/pod-layout.js';
import type { LiveSession } from '../../../src/openvpn/sessions-provider.js';
import type { AppContext } from '../../../src/services/context.js';
import { UsageService } from '../../../src/services/usage.js';
import { testContext } from '../../helpers/context.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminKubeApi,
  dropNamespace,
  freshNamespace,
  kubectl,
  realCluster,
} from '../../helpers/real-cluster.js';

function session(clientId: number, commonName: string, bytesIn: number, since: Date): LiveSession {
  return {
    cid: String(clientId),
    commonName,
    realAddress: '172.18.12.100:40001',
    virtualAddress: '10.140.0.7',
    bytesIn,
    bytesOut: bytesIn * 2,
    connectedSince: since,
  };
}

/** The agent's reporter with openvpn's sessions given by the test; every tick reads and writes. */
function reporter(
  kube: KubeApi,
  namespace: string,
  pod: string,
  status: () => LiveSession[],
): ReplicaReporter {
  return new ReplicaReporter({
    kube,
    namespace,
    pod: { name: pod },
    state: () => ({ crlNumber: 1 }),
    sessions: { list: async () => status(), disconnect: async () => undefined },
    sessionsMs: 0,
    heartbeatMs: 0,
  });
}

describe('session history from the pod agent (real API server)', function () {
  this.timeout(90_000);
  let cp: ControlPlane;
  let dir: string;
  let ctx: AppContext;
  let ns: string;
  let kube: KubeApi;
  let cluster: ClusterService;

  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
  });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-sessions-'));
    ns = await freshNamespace(cp, 'sess');
    ctx = await testContext(dir, { 'kubernetes.namespace': ns, 'vpn.endpoints': ['vpn.example.test'] });
    kube = adminKubeApi(cp);
    // deploy creates it; the agent only patches it
    await kube.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: OBJECT_NAMES.agentStatus, namespace: ns },
      data: {},
    });
    cluster = new ClusterService({
      config: ctx.config,
      store: ctx.store,
      server: ctx.server,
      revocation: ctx.revocation,
      kube: () => kube,
      sessions: new UsageService(ctx.store, () => new Date()),
    });
    await ctx.users.create({ actor: 'test', name: 'alice', role: 'user' });
  });
  afterEach(async () => {
    await ctx?.close();
    rmSync(dir, { recursive: true, force: true });
    if (cp) await dropNamespace(cp, ns);
  });

  it('records, updates and ends sessions from the readings; a revoked one ends as revoked', async () => {
    await ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: 'alice.laptop' });
    const phone = await ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: 'alice.phone' });
    const since = new Date(Date.now() - 60_000);
    let live: LiveSession[] = [session(3, 'alice.laptop', 1000, since), session(4, 'alice.phone', 10, since)];
    const agent = reporter(kube, ns, 'podgate-openvpn-7d9-abcde', () => live);

    await agent.tick();
    // the path serve's timer takes (audit rows and sessions from one poll)
    await cluster.syncAgentStatus();
    let rows = ctx.store.listSessionHistory({ user: 'alice' });
    assert.equal((await rows).length, 2);
    const laptop = (await rows).find((r) => r.commonName === 'alice.laptop')!;
    assert.equal(laptop.replica, 'pod/podgate-openvpn-7d9-abcde');
    assert.equal(laptop.userName, 'alice');
    assert.equal(laptop.bytesIn, 1000);
    assert.equal(laptop.bytesOut, 2000);
    assert.equal(laptop.endedAt, null);
    assert.deepEqual((await cluster.syncSessions()).recorded, [], 'the same reading is recorded once');

    live = [session(3, 'alice.laptop', 5000, since), session(4, 'alice.phone', 20, since)];
    await new Promise((r) => setTimeout(r, 5)); // a later report time
    await agent.tick();
    assert.deepEqual((await cluster.syncSessions()).recorded, ['podgate-openvpn-7d9-abcde']);
    rows = ctx.store.listSessionHistory({ user: 'alice' });
    assert.equal((await rows).find((r) => r.commonName === 'alice.laptop')!.bytesIn, 5000);

    await ctx.revocation.revoke({ actor: 'test', serialOrName: phone.cert.serial, reason: 'keyCompromise' });
    live = [];
    await agent.tick();
    await cluster.syncSessions();
    rows = ctx.store.listSessionHistory({ user: 'alice' });
    assert.deepEqual((await rows).map((r) => [r.commonName, r.endReason, r.bytesIn]).sort(), [
      ['alice.laptop', 'ended', 5000],
      ['alice.phone', 'revoked', 20],
    ]);
  });

  it('a replica whose Lease went with its pod: its sessions end as server-stop', async () => {
    await ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: 'alice.laptop' });
    const agent = reporter(kube, ns, 'podgate-openvpn-old', () => [
      session(9, 'alice.laptop', 700, new Date(Date.now() - 5000)),
    ]);
    await agent.tick();
    await cluster.syncSessions();
    assert.equal((await ctx.store.listSessionHistory({ user: 'alice' }))[0]!.endedAt, null);
    // the garbage collector deletes the Lease with its pod
    await kubectl(cp, ['-n', ns, 'delete', 'lease', replicaLeaseRef(ns, 'podgate-openvpn-old').name]);
    const later = await cluster.syncSessions();
    assert.deepEqual(later.gone, ['podgate-openvpn-old']);
    const row = (await ctx.store.listSessionHistory({ user: 'alice' }))[0]!;
    assert.equal(row.endReason, 'server-stop');
    assert.equal(row.bytesIn, 700);
  });
});
