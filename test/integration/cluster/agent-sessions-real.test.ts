/**
 * Session history in cluster mode against the real API server: the pod agent's reporter writes its
 * `status 3` readings into the real `podgate-agent-status` ConfigMap, and the manager's ClusterService
 * records them through the UsageService into the real SQLite store (the recorder `server run` uses),
 * ends sessions that left a reading, and ends a gone pod's sessions and removes its key.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterService } from '../../../src/cluster/index.js';
import { ConfigMapSessionsReporter } from '../../../src/cluster/agent-sessions.js';
import type { KubeApi } from '../../../src/cluster/kube-api.js';
import { OBJECT_NAMES } from '../../../src/cluster/pod-layout.js';
import type { ClientSession } from '../../../src/openvpn/status.js';
import type { AppContext } from '../../../src/services/context.js';
import { UsageService } from '../../../src/services/usage.js';
import { testContext } from '../../helpers/context.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { adminKubeApi, dropNamespace, freshNamespace, realCluster } from '../../helpers/real-cluster.js';

function session(clientId: number, commonName: string, bytesIn: number, since: Date): ClientSession {
  return {
    clientId,
    commonName,
    realAddress: '172.18.12.100:40001',
    virtualAddress: '10.140.0.7',
    virtualIpv6Address: '',
    bytesReceived: bytesIn,
    bytesSent: bytesIn * 2,
    connectedSince: since,
    username: '',
    peerId: 0,
    cipher: 'AES-256-GCM',
  };
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
    ctx?.close();
    rmSync(dir, { recursive: true, force: true });
    if (cp) await dropNamespace(cp, ns);
  });

  it('records, updates and ends sessions from the readings; a revoked one ends as revoked', async () => {
    await ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: 'alice.laptop' });
    const phone = await ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: 'alice.phone' });
    const since = new Date(Date.now() - 60_000);
    let live: ClientSession[] = [
      session(3, 'alice.laptop', 1000, since),
      session(4, 'alice.phone', 10, since),
    ];
    const reporter = new ConfigMapSessionsReporter({
      kube,
      namespace: ns,
      podName: 'podgate-openvpn-7d9-abcde',
      status: async () => live,
      everyMs: 1000,
    });

    await reporter.report();
    // the path serve's timer takes (audit rows and sessions from one poll)
    await cluster.syncAgentStatus();
    let rows = ctx.store.listSessionHistory({ user: 'alice' });
    assert.equal(rows.length, 2);
    const laptop = rows.find((r) => r.commonName === 'alice.laptop')!;
    assert.equal(laptop.replica, 'pod/podgate-openvpn-7d9-abcde');
    assert.equal(laptop.userName, 'alice');
    assert.equal(laptop.bytesIn, 1000);
    assert.equal(laptop.bytesOut, 2000);
    assert.equal(laptop.endedAt, null);
    assert.deepEqual((await cluster.syncSessions()).recorded, [], 'the same reading is recorded once');

    live = [session(3, 'alice.laptop', 5000, since), session(4, 'alice.phone', 20, since)];
    await reporter.report();
    assert.deepEqual((await cluster.syncSessions()).recorded, ['podgate-openvpn-7d9-abcde']);
    rows = ctx.store.listSessionHistory({ user: 'alice' });
    assert.equal(rows.find((r) => r.commonName === 'alice.laptop')!.bytesIn, 5000);

    await ctx.revocation.revoke({ actor: 'test', serialOrName: phone.cert.serial, reason: 'keyCompromise' });
    live = [];
    await reporter.report();
    await cluster.syncSessions();
    rows = ctx.store.listSessionHistory({ user: 'alice' });
    assert.deepEqual(rows.map((r) => [r.commonName, r.endReason, r.bytesIn]).sort(), [
      ['alice.laptop', 'ended', 5000],
      ['alice.phone', 'revoked', 20],
    ]);
  });

  it('a pod whose readings stopped: its sessions end as server-stop and its key is removed', async () => {
    await ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: 'alice.laptop' });
    const reporter = new ConfigMapSessionsReporter({
      kube,
      namespace: ns,
      podName: 'podgate-openvpn-old',
      status: async () => [session(9, 'alice.laptop', 700, new Date(Date.now() - 5000))],
      everyMs: 1000,
    });
    await reporter.report();
    await cluster.syncSessions();
    assert.equal(ctx.store.listSessionHistory({ user: 'alice' })[0]!.endedAt, null);
    // two minutes later, nothing new came from that pod (3 intervals + 1 minute have passed)
    const later = await cluster.syncSessions(new Date(Date.now() + 120_000));
    assert.deepEqual(later.gone, ['podgate-openvpn-old']);
    const row = ctx.store.listSessionHistory({ user: 'alice' })[0]!;
    assert.equal(row.endReason, 'server-stop');
    const cm = await kube.get({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: ns,
      name: OBJECT_NAMES.agentStatus,
    });
    assert.equal(
      (cm?.data as Record<string, string> | undefined)?.['sessions.podgate-openvpn-old'],
      undefined,
    );
  });
});
