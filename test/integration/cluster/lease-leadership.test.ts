/**
 * Leader election with a coordination.k8s.io/v1 Lease on the real API server (v1.34): replicas are
 * separate processes (test/helpers/leadership-worker.ts) running podgate's LeaseLeadership through its
 * real Kubernetes client. Killing the holder moves the leadership to the other replica once the lease
 * has gone unrenewed for its duration, and the printed timestamps show there were never two leaders.
 */
import assert from 'node:assert/strict';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  assertNeverTwoLeaders,
  isLeader,
  LeadershipWorkers,
  type WorkerProc,
} from '../../helpers/leadership-procs.js';
import { adminRest, dropNamespace, freshNamespace, realCluster } from '../../helpers/real-cluster.js';

const DURATION_S = 3;

interface LeaseBody {
  spec: { holderIdentity?: string; renewTime?: string; leaseTransitions?: number };
}

describe('cluster: leader election with a Lease (real API server)', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let ns: string;
  const workers = new LeadershipWorkers();

  before(async () => {
    cp = await realCluster();
  });
  beforeEach(async () => {
    ns = await freshNamespace(cp, 'lease');
  });
  afterEach(async () => {
    await workers.killAll();
    await dropNamespace(cp, ns);
  });

  const start = (identity: string): WorkerProc =>
    workers.start({
      kind: 'lease',
      identity,
      kubeconfig: cp.kubeconfig,
      namespace: ns,
      leaseDurationSeconds: DURATION_S,
      renewDeadlineMs: 2000,
      retryPeriodMs: 250,
    });

  const readLease = async (): Promise<LeaseBody> => {
    const res = await adminRest<LeaseBody>(
      cp,
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/podgate-manager`,
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };

  it('two replicas started together: exactly one leads, the lease names it', async () => {
    const a = start('replica-a');
    const b = start('replica-b');
    await workers.until(
      'both started and one leader',
      () => [a, b].every((p) => p.events.some((e) => e.started)) && workers.leaders().length === 1,
    );
    await new Promise((r) => setTimeout(r, 2000)); // several renew rounds
    const leaders = workers.leaders();
    assert.equal(leaders.length, 1);
    assert.equal((await readLease()).spec.holderIdentity, leaders[0]!.id);
    assertNeverTwoLeaders([a, b], new Map());
  });

  it('SIGKILL of the holder: the other leads once the lease expired, never two leaders', async () => {
    const a = start('replica-a');
    await workers.until('a leads', () => isLeader(a));
    const b = start('replica-b');
    await workers.until('b started', () => b.events.some((e) => e.started));
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(!isLeader(b), 'b must not lead while a renews');

    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await a.exited;
    const before = await readLease();
    assert.equal(before.spec.holderIdentity, 'replica-a');
    const lastRenew = Date.parse(before.spec.renewTime!);

    await workers.until('b leads', () => isLeader(b));
    const tookOver = b.events.find((e) => e.leader === true)!.at;
    // b may take the lease only after it went unrenewed for the whole duration
    assert.ok(
      tookOver >= lastRenew + DURATION_S * 1000,
      `b took over at ${tookOver}, before ${lastRenew} + ${DURATION_S}s`,
    );
    assertNeverTwoLeaders([a, b], new Map([['replica-a', killedAt]]));
    const after = await readLease();
    assert.equal(after.spec.holderIdentity, 'replica-b');
    assert.equal(after.spec.leaseTransitions, 1);
    console.log(`      lease takeover ${tookOver - killedAt} ms after the kill (lease ${DURATION_S} s)`);
  });

  it('SIGTERM: the holder steps down and hands the lease back; the other takes it', async () => {
    const a = start('replica-a');
    await workers.until('a leads', () => isLeader(a));
    const b = start('replica-b');
    await workers.until('b started', () => b.events.some((e) => e.started));
    a.child.kill('SIGTERM');
    await a.exited;
    assert.equal(a.child.exitCode, 0, a.stderr());
    const steppedDown = a.events.at(-1)!;
    assert.equal(steppedDown.leader, false, 'a says it stopped leading before it exits');
    await workers.until('b leads', () => isLeader(b));
    assertNeverTwoLeaders([a, b], new Map());
    const lease = await readLease();
    assert.equal(lease.spec.holderIdentity, 'replica-b');
  });
});
