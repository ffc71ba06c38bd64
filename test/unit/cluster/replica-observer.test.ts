/**
 * Which replica reports are stale, judged on the manager's clock when the replicas' clocks differ from
 * it. The Leases are the ones the agent writes (`replicaLease`), stamped with a skewed replica clock;
 * the API server is a stand-in that only lists them (`list`): what is under test is the manager's
 * judgement of the stamps, which storing them in a real API server does not change (the real list path
 * is test/integration/cluster/replica-status-real.test.ts). It models no selector, watch or write.
 */
import assert from 'node:assert/strict';
import type { KubeApi, KubeObject } from '../../../src/cluster/kube-api.js';
import { ReplicaSessionsProvider } from '../../../src/cluster/replica-sessions.js';
import { replicaLease, type ReplicaReport } from '../../../src/cluster/replica-status.js';

const NS = 'middleware';
const T0 = Date.parse('2026-12-06T09:00:00Z');
const SECOND = 1000;

function report(pod: string, at: Date): ReplicaReport {
  return {
    pod,
    management: true,
    sessions: [
      {
        cid: '7',
        commonName: 'alice.laptop',
        realAddress: '172.18.12.100:50000',
        virtualAddress: '10.140.0.2',
        bytesIn: 1,
        bytesOut: 2,
        connectedSince: new Date(T0 - 3600 * SECOND).toISOString(),
      },
    ],
    handled: {},
    updatedAt: at.toISOString(),
  };
}

/** One replica `skewMs` off the manager's clock; `write()` is one renewal of its Lease. */
function world(skewMs: number) {
  let managerNow = T0;
  let lease: KubeObject | undefined;
  const kube = { list: () => Promise.resolve({ items: lease ? [lease] : [] }) } as unknown as KubeApi;
  const provider = new ReplicaSessionsProvider({
    kube: () => kube,
    namespace: NS,
    now: () => new Date(managerNow),
  });
  return {
    write: () => {
      const at = new Date(managerNow + skewMs);
      lease = replicaLease(NS, { name: 'podgate-openvpn-a' }, report('podgate-openvpn-a', at), at);
    },
    at: (ms: number) => (managerNow = T0 + ms),
    /** Whether the replica's session is listed, and the replica judged stale. */
    look: async () => ({
      listed: (await provider.list()).length === 1,
      stale: (await provider.replicas())[0]!.stale,
    }),
  };
}

describe('cluster: replica reports judged stale on the manager clock, whatever the replica clock says', () => {
  it('a live replica whose clock runs 2 minutes behind: listed from its next renewal on', async () => {
    const w = world(-120 * SECOND);
    const seen: boolean[] = [];
    for (let s = 0; s <= 60; s += 15) {
      w.at(s * SECOND);
      w.write(); // renews every 15 s, as the agent does at least
      seen.push((await w.look()).listed);
    }
    // the first sight can only go by the stamp; every renewal after it shows the replica is alive
    assert.deepEqual(seen, [false, true, true, true, true]);
  });

  it('a replica whose clock ran 10 minutes ahead and that died: stale 45 s after its last renewal', async () => {
    const w = world(600 * SECOND);
    w.write();
    w.at(0);
    assert.deepEqual(await w.look(), { listed: true, stale: false });
    w.at(30 * SECOND);
    assert.deepEqual(await w.look(), { listed: true, stale: false });
    w.at(50 * SECOND);
    assert.deepEqual(await w.look(), { listed: false, stale: true });
  });

  it('a replica on the same clock that stopped a minute ago is stale at first sight and stays so', async () => {
    const w = world(0);
    w.at(-60 * SECOND);
    w.write();
    w.at(0);
    assert.deepEqual(await w.look(), { listed: false, stale: true });
    w.at(10 * SECOND);
    assert.deepEqual(await w.look(), { listed: false, stale: true });
  });

  it('a live replica on the same clock stays listed', async () => {
    const w = world(0);
    for (let s = 0; s <= 90; s += 15) {
      w.at(s * SECOND);
      w.write();
      assert.deepEqual(await w.look(), { listed: true, stale: false }, `at ${s} s`);
    }
  });
});
