import assert from 'node:assert/strict';
import {
  ReplicaSessionHistory,
  REPLICA_GONE_MS,
  type SessionSink,
} from '../../../src/cluster/agent-sessions.js';
import type { ReplicaView } from '../../../src/cluster/replica-status.js';
import type { ClientSession } from '../../../src/openvpn/status.js';
import { setLogLevel, logger } from '../../../src/lib/logger.js';

/** Records what the history hands the recorder (services/usage.ts is covered by the integration test). */
class Sink implements SessionSink {
  readonly calls: string[] = [];
  constructor(private readonly open: string[] = []) {}
  async recordReading(replica: string, clients: ClientSession[], at: Date): Promise<void> {
    this.calls.push(
      `record ${replica} ${clients.map((c) => `${c.clientId}:${c.commonName}:${c.bytesReceived}`).join(',')} ${at.toISOString()}`,
    );
  }
  async closeReplica(replica: string): Promise<number> {
    this.calls.push(`close ${replica}`);
    return 1;
  }
  async openReplicas(): Promise<string[]> {
    return this.open;
  }
}

const T0 = new Date('2026-12-06T05:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

function replica(pod: string, updatedAt: Date, bytes = 10): ReplicaView {
  return {
    pod,
    management: true,
    sessions: [
      {
        cid: '5',
        commonName: 'alice.laptop',
        realAddress: '172.18.12.100:5000',
        virtualAddress: '10.140.0.9',
        bytesIn: bytes,
        bytesOut: 2 * bytes,
        connectedSince: T0.toISOString(),
      },
    ],
    handled: {},
    updatedAt: updatedAt.toISOString(),
    stale: false,
    requests: {},
  };
}

describe('session history from the replica Leases', () => {
  let level: string;
  before(() => {
    level = logger.level;
    setLogLevel('silent');
  });
  after(() => setLogLevel(level));

  it('records each new report once, under pod/<pod>', async () => {
    const sink = new Sink();
    const h = new ReplicaSessionHistory(sink);
    assert.deepEqual((await h.sync([replica('a', at(0)), replica('b', at(0))], at(1000))).recorded, [
      'a',
      'b',
    ]);
    assert.deepEqual((await h.sync([replica('a', at(0)), replica('b', at(0))], at(2000))).recorded, []);
    assert.deepEqual(
      (await h.sync([replica('a', at(15_000), 99), replica('b', at(0))], at(16_000))).recorded,
      ['a'],
    );
    assert.deepEqual(sink.calls, [
      `record pod/a 5:alice.laptop:10 ${at(0).toISOString()}`,
      `record pod/b 5:alice.laptop:10 ${at(0).toISOString()}`,
      `record pod/a 5:alice.laptop:99 ${at(15_000).toISOString()}`,
    ]);
  });

  it('a replica whose Lease went with its pod, or whose report is too old: its sessions end, once', async () => {
    const sink = new Sink();
    const h = new ReplicaSessionHistory(sink);
    await h.sync([replica('a', at(0)), replica('b', at(0))], at(0));
    sink.calls.length = 0;
    // a's Lease is gone (the garbage collector deleted it with the pod); b stopped reporting
    assert.deepEqual((await h.sync([replica('b', at(0))], at(1000))).gone, ['a']);
    assert.deepEqual((await h.sync([replica('b', at(0))], at(REPLICA_GONE_MS))).gone, []);
    assert.deepEqual((await h.sync([replica('b', at(0))], at(REPLICA_GONE_MS + 1))).gone, ['b']);
    assert.deepEqual((await h.sync([replica('b', at(0))], at(REPLICA_GONE_MS + 5000))).gone, [], 'once');
    assert.deepEqual(sink.calls, ['close pod/a', 'close pod/b']);
  });

  it('after a manager restart, a pod that went meanwhile still has its open sessions ended', async () => {
    const sink = new Sink(['pod/old', 'office-server', 'pod/live']);
    const h = new ReplicaSessionHistory(sink);
    const r = await h.sync([replica('live', at(0))], at(1000));
    assert.deepEqual(r, { recorded: ['live'], gone: ['old'] });
    assert.deepEqual(
      sink.calls.filter((c) => c.startsWith('close')),
      ['close pod/old'],
      '`server run` replicas untouched',
    );
  });

  it('an old report never recorded (a pod gone before this manager started) is left alone', async () => {
    const sink = new Sink();
    const h = new ReplicaSessionHistory(sink);
    assert.deepEqual(await h.sync([replica('x', at(0))], at(REPLICA_GONE_MS + 1)), {
      recorded: [],
      gone: [],
    });
    assert.deepEqual(sink.calls, []);
  });
});
