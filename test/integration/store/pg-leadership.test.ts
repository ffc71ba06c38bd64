/**
 * Leader election outside Kubernetes: a PostgreSQL session advisory lock (Debian's PostgreSQL, started
 * by the test), held by replicas that are separate processes (test/helpers/leadership-worker.ts).
 */
import assert from 'node:assert/strict';
import { advisoryKey } from '../../../src/store/pg/advisory-leadership.js';
import {
  assertNeverTwoLeaders,
  isLeader,
  LeadershipWorkers,
  type WorkerProc,
} from '../../helpers/leadership-procs.js';
import type { PgServer } from '../../helpers/postgres.js';
import { pgTarget, sharedPostgres } from '../../helpers/pg-store.js';

describe('store (PostgreSQL): leader election with an advisory lock', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let db: string;
  const workers = new LeadershipWorkers();

  before(async () => {
    pg = await sharedPostgres();
  });
  after(() => workers.killAll());
  beforeEach(async () => {
    db = await pg.createDatabase('lead');
  });
  afterEach(() => workers.killAll());

  const start = (identity: string): WorkerProc =>
    workers.start({ kind: 'pg', identity, target: pgTarget(pg, db), retryMs: 200, checkMs: 200 });

  /** Backend pid of the session holding the timers' lock, from pg_locks (what an operator would look at). */
  const holderPid = async (): Promise<number | undefined> => {
    const c = await pg.connect(db);
    try {
      const key = BigInt(advisoryKey('podgate.timers'));
      const hi = Number(BigInt.asUintN(64, key) >> 32n);
      const lo = Number(BigInt.asUintN(64, key) & 0xffffffffn);
      const r = await c.query<{ pid: number }>(
        `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`,
        [hi, lo],
      );
      return r.rows[0]?.pid;
    } finally {
      await c.end();
    }
  };

  it('two replicas started together: exactly one leads, and it is the one holding the lock', async () => {
    const a = start('replica-a');
    const b = start('replica-b');
    await workers.until(
      'both started and one leader',
      () => [a, b].every((p) => p.events.some((e) => e.started)) && workers.leaders().length === 1,
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(workers.leaders().length, 1);
    assert.ok((await holderPid()) !== undefined, 'pg_locks shows the lock held');
    assertNeverTwoLeaders([a, b], new Map());
  });

  it('SIGKILL of the leader: the server frees the lock and the other leads, never two leaders', async () => {
    const a = start('replica-a');
    await workers.until('a leads', () => isLeader(a));
    const b = start('replica-b');
    await workers.until('b started', () => b.events.some((e) => e.started));
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(!isLeader(b));
    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await a.exited;
    await workers.until('b leads', () => isLeader(b));
    assertNeverTwoLeaders([a, b], new Map([['replica-a', killedAt]]));
    console.log(`      advisory lock takeover ${b.events.at(-1)!.at - killedAt} ms after the kill`);
  });

  it('SIGTERM: the leader unlocks and steps down; the other leads', async () => {
    const a = start('replica-a');
    await workers.until('a leads', () => isLeader(a));
    const b = start('replica-b');
    await workers.until('b started', () => b.events.some((e) => e.started));
    a.child.kill('SIGTERM');
    await a.exited;
    assert.equal(a.child.exitCode, 0, a.stderr());
    assert.equal(a.events.at(-1)!.leader, false);
    await workers.until('b leads', () => isLeader(b));
    assertNeverTwoLeaders([a, b], new Map());
  });

  it('the server ends the leader session (pg_terminate_backend): it steps down by itself, one leads again', async () => {
    const a = start('replica-a');
    await workers.until('a leads', () => isLeader(a));
    const b = start('replica-b');
    await workers.until('b started', () => b.events.some((e) => e.started));
    const pid = await holderPid();
    assert.ok(pid !== undefined);
    const c = await pg.connect(db);
    try {
      await c.query('SELECT pg_terminate_backend($1)', [pid]);
    } finally {
      await c.end();
    }
    await workers.until('a steps down', () => a.events.some((e) => e.leader === false));
    // whichever retries first takes the lock again, on a new session (a reconnects; b keeps trying)
    await workers.until('one leader again', () => workers.leaders().length === 1);
    const again = await holderPid();
    assert.ok(again !== undefined && again !== pid, `lock held by the new session ${again}, not ${pid}`);
    assert.equal(a.child.exitCode, null, 'a is still running');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(workers.leaders().length, 1);
  });
});
