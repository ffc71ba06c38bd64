/**
 * LeaseLeadership when the API server stops answering it: the real API server cannot be cut off from
 * one replica on demand (the cluster suites share it), so this uses an in-memory Lease store. It models
 * get, create (409 when present) and merge patch with a resourceVersion precondition (409 on a stale
 * one), nothing else. The behaviour with the real API server: test/integration/cluster/lease-leadership.test.ts.
 */
import assert from 'node:assert/strict';
import { KubeApiError, type KubeApi, type KubeObject } from '../../../src/cluster/kube-api.js';
import { LeaseLeadership } from '../../../src/cluster/lease-leadership.js';

type LeaseApi = Pick<KubeApi, 'get' | 'create' | 'mergePatch'>;

/** One Lease in memory, shared by the replicas; `down` holds the replicas that cannot reach it. */
function leaseStore(): { replica(id: string): LeaseApi; down: Set<string>; lease(): KubeObject | undefined } {
  let obj: KubeObject | undefined;
  let rv = 0;
  const down = new Set<string>();
  const reach = (id: string) => {
    if (down.has(id)) throw new KubeApiError(0, 'Unreachable', 'connect ECONNREFUSED', 'lease');
  };
  return {
    down,
    lease: () => obj,
    replica: (id) => ({
      get: async () => {
        reach(id);
        return obj && structuredClone(obj);
      },
      create: async (o) => {
        reach(id);
        if (obj) throw new KubeApiError(409, 'AlreadyExists', 'exists', 'create');
        obj = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++rv) } };
        return obj;
      },
      mergePatch: async (_ref, patch) => {
        reach(id);
        const p = patch as { metadata: { resourceVersion?: string }; spec: Record<string, unknown> };
        if (!obj) throw new KubeApiError(404, 'NotFound', 'gone', 'patch');
        if (p.metadata.resourceVersion !== obj.metadata.resourceVersion) {
          throw new KubeApiError(409, 'Conflict', 'stale', 'patch');
        }
        obj = {
          ...obj,
          metadata: { ...obj.metadata, resourceVersion: String(++rv) },
          spec: { ...(obj.spec as object), ...p.spec },
        };
        return obj;
      },
    }),
  };
}

const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms));

describe('cluster: Lease leadership when the API server is out of reach', () => {
  it('a leader that cannot renew steps down at the renew deadline, before the lease could pass on', async () => {
    const store = leaseStore();
    let now = 1_000_000;
    const opts = {
      namespace: 'ns',
      leaseDurationSeconds: 15,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 5,
      now: () => now,
    };
    const a = new LeaseLeadership(store.replica('a'), { ...opts, identity: 'a' });
    const b = new LeaseLeadership(store.replica('b'), { ...opts, identity: 'b' });
    const changes: string[] = [];
    a.onChange((l) => changes.push(`a:${l}@${now}`));
    b.onChange((l) => changes.push(`b:${l}@${now}`));
    try {
      await a.start();
      await b.start();
      assert.ok(a.isLeader() && !b.isLeader());
      store.down.add('a'); // a can no longer reach the API server
      now += 9_000;
      await tick();
      assert.ok(a.isLeader(), 'still within its renew deadline');
      now += 1_000; // 10 s without renewal: a steps down
      await tick();
      assert.ok(!a.isLeader(), 'a stepped down at the deadline');
      assert.ok(!b.isLeader(), 'b waits for the lease to expire (15 s after it last saw it change)');
      now += 5_001;
      await tick();
      assert.ok(b.isLeader(), 'b took over after the lease duration');
      assert.equal((store.lease()!.spec as { holderIdentity: string }).holderIdentity, 'b');
      assert.deepEqual(
        changes.map((c) => c.split('@')[0]),
        ['a:true', 'a:false', 'b:true'],
      );
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('refuses a renew deadline that is not shorter than the lease', () => {
    assert.throws(
      () =>
        new LeaseLeadership(leaseStore().replica('a'), {
          namespace: 'ns',
          leaseDurationSeconds: 5,
          renewDeadlineMs: 5000,
        }),
      /renewDeadlineMs must be shorter/,
    );
  });
});
