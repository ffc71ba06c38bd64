/**
 * Replica reports through the real API server: two agents' ReplicaReporters (replica-reporter.ts) write
 * their Leases, the manager's ReplicaSessionsProvider lists every session with its replica and ends one
 * on whichever replica holds it; a Lease goes with its pod (the real garbage collector); `k8s status`
 * lines name every replica.
 *
 * The sessions side of each reporter is an in-memory stand-in for openvpn's management interface (the
 * real one is crossed in test/e2e/k8s-replicas.test.ts): it does not model a busy or restarting
 * openvpn, only a list and a kill.
 */
import assert from 'node:assert/strict';
import type { KubeApi } from '../../../src/cluster/kube-api.js';
import { NotFound } from '../../../src/lib/errors.js';
import type { LiveSession } from '../../../src/openvpn/sessions-provider.js';
import { ReplicaReporter } from '../../../src/cluster/replica-reporter.js';
import { ReplicaSessionsProvider } from '../../../src/cluster/replica-sessions.js';
import { readReplicas, replicaLeaseRef } from '../../../src/cluster/replica-status.js';
import { formatReplicas } from '../../../src/cluster/status.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminKubeApi,
  adminRest,
  dropNamespace,
  freshNamespace,
  realCluster,
} from '../../helpers/real-cluster.js';

/** openvpn's sessions as the reporter sees them (see the header). */
class Sessions {
  constructor(public live: LiveSession[]) {}
  list = async () => structuredClone(this.live);
  disconnect = async (cid: string) => {
    if (!this.live.some((s) => s.cid === cid)) throw new NotFound(`no live session with id ${cid}`);
    this.live = this.live.filter((s) => s.cid !== cid);
  };
}

const session = (cid: string, cn: string): LiveSession => ({
  cid,
  commonName: cn,
  realAddress: '172.18.12.100:40000',
  virtualAddress: '10.140.0.2',
  bytesIn: 1,
  bytesOut: 2,
  connectedSince: new Date('2026-12-06T05:00:00.000Z'),
});

async function until<T>(f: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('replica reports (Leases) on the real API server', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let ns: string;
  let kube: KubeApi;
  const reporters: ReplicaReporter[] = [];
  const pods: Record<string, { uid: string; sessions: Sessions }> = {};
  /** Replica a's access drop counter (its nft table's, as the agent reads it); b enforces nothing. */
  let droppedA = 5;

  before(async () => {
    cp = await realCluster();
    ns = await freshNamespace(cp, 'replicas');
    kube = adminKubeApi(cp);
    for (const [name, live] of [
      ['podgate-openvpn-a', [session('0', 'admin.laptop'), session('1', 'bob.phone')]],
      ['podgate-openvpn-b', [session('0', 'carol.laptop')]],
    ] as const) {
      // retried while the namespace's `default` ServiceAccount does not exist yet (its controller makes it)
      const pod = await until(async () => {
        const r = await adminRest<{ metadata: { uid: string } }>(
          cp,
          'POST',
          `/api/v1/namespaces/${ns}/pods`,
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name },
            spec: { containers: [{ name: 'c', image: 'localhost/none:1' }] },
          },
        );
        if (r.status === 201) return r;
        assert.match(JSON.stringify(r.body), /serviceaccount \\"default\\" not found/);
        return undefined;
      }, `pod ${name} created`);
      pods[name] = { uid: pod.body.metadata.uid, sessions: new Sessions([...live]) };
      const r = new ReplicaReporter({
        kube,
        namespace: ns,
        pod: { name, uid: pod.body.metadata.uid },
        sessions: pods[name].sessions,
        ...(name === 'podgate-openvpn-a' ? { dropped: async () => droppedA } : {}),
        state: () => ({ crlNumber: 7, rulesVersion: 3, accessState: 'applied' }),
        pollMs: 100,
        sessionsMs: 200,
        heartbeatMs: 2000,
      });
      r.start();
      reporters.push(r);
    }
  });
  after(async () => {
    for (const r of reporters) r.stop();
    if (ns) await dropNamespace(cp, ns);
  });

  it('every session of every replica, named by its replica; k8s status lines for both', async () => {
    const provider = new ReplicaSessionsProvider({ kube: () => kube, namespace: ns });
    const list = await until(async () => {
      const l = await provider.list();
      return l.length === 3 ? l : undefined;
    }, 'three sessions reported');
    assert.deepEqual(list.map((s) => [s.cid, s.replica, s.commonName]).sort(), [
      ['0@podgate-openvpn-a', 'podgate-openvpn-a', 'admin.laptop'],
      ['0@podgate-openvpn-b', 'podgate-openvpn-b', 'carol.laptop'],
      ['1@podgate-openvpn-a', 'podgate-openvpn-a', 'bob.phone'],
    ]);
    const lines = formatReplicas({
      pods: [
        { name: 'podgate-openvpn-a', phase: 'Running', ready: true, containers: [] },
        { name: 'podgate-openvpn-b', phase: 'Running', ready: false, containers: [] },
      ],
      replicas: await readReplicas(kube, ns, new Date()),
      publishedCrlNumber: 8,
    });
    assert.deepEqual(lines, [
      'replica podgate-openvpn-a: Ready, CRL #7 (behind #8), rules v3, 2 session(s)',
      'replica podgate-openvpn-b: not Ready, CRL #7 (behind #8), rules v3, 1 session(s)',
    ]);
  });

  it("each replica's access drop counter reaches its Lease; a change alone rides on the heartbeat", async () => {
    const byPod = async () => new Map((await readReplicas(kube, ns, new Date())).map((r) => [r.pod, r]));
    const first = await until(async () => {
      const a = (await byPod()).get('podgate-openvpn-a');
      return a?.droppedPackets === 5 ? a : undefined;
    }, 'replica a to report 5 drops');
    assert.equal((await byPod()).get('podgate-openvpn-b')?.droppedPackets, undefined, 'b reports none');
    // more drops and nothing else: the Lease keeps its report until the heartbeat (2 s here), then has it
    droppedA = 12;
    const seen = await until(async () => {
      const a = (await byPod()).get('podgate-openvpn-a');
      return a?.droppedPackets === 12 ? a : undefined;
    }, 'replica a to report 12 drops');
    assert.ok(
      Date.parse(seen.updatedAt) - Date.parse(first.updatedAt) >= 1500,
      `the change came with a heartbeat: ${first.updatedAt} → ${seen.updatedAt}`,
    );
  });

  it('a disconnect ends the session on the replica that holds it, and only there; an unknown id is 404', async () => {
    const provider = new ReplicaSessionsProvider({ kube: () => kube, namespace: ns });
    await provider.disconnect('0@podgate-openvpn-b');
    assert.deepEqual(pods['podgate-openvpn-b']!.sessions.live, []);
    assert.equal(
      pods['podgate-openvpn-a']!.sessions.live.length,
      2,
      'same cid on the other replica untouched',
    );
    await assert.rejects(provider.disconnect('9@podgate-openvpn-a'), NotFound);
    await assert.rejects(provider.disconnect('0@podgate-openvpn-zzz'), NotFound);
    await assert.rejects(provider.disconnect('../x'), NotFound);
    // the request annotation is gone once carried out
    const lease = await kube.get(replicaLeaseRef(ns, 'podgate-openvpn-b'));
    assert.deepEqual(
      Object.keys(lease?.metadata.annotations ?? {}).filter((k) => k.startsWith('disconnect.')),
      [],
    );
  });

  it("a replica's Lease goes away with its pod (owner reference, the real garbage collector)", async () => {
    reporters[1]!.stop(); // the agent dies with its pod
    const del = await adminRest(
      cp,
      'DELETE',
      `/api/v1/namespaces/${ns}/pods/podgate-openvpn-b?gracePeriodSeconds=0`,
    );
    assert.ok(del.status === 200 || del.status === 202, String(del.status));
    await until(
      async () => ((await kube.get(replicaLeaseRef(ns, 'podgate-openvpn-b'))) ? undefined : true),
      'the Lease of the deleted pod to be collected',
      60_000,
    );
    const left = await readReplicas(kube, ns, new Date());
    assert.deepEqual(
      left.map((r) => r.pod),
      ['podgate-openvpn-a'],
    );
  });
});
