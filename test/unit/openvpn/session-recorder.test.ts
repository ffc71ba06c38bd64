import assert from 'node:assert/strict';
import { SessionRecorder } from '../../../src/openvpn/session-recorder.js';
import type { ClientSession } from '../../../src/openvpn/status.js';
import { parseSince, sessionsCsv, UsageService } from '../../../src/services/usage.js';
import { newCert, tempStore, type TempStore } from '../store/temp-store.js';

const T0 = new Date('2026-12-01T10:00:00.000Z');
const at = (s: number): Date => new Date(T0.getTime() + s * 1000);

function client(cid: number, cn: string, inB: number, outB: number, since = T0): ClientSession {
  return {
    commonName: cn,
    realAddress: `172.18.1.2:${40000 + cid}`,
    virtualAddress: `10.140.0.${cid + 1}`,
    virtualIpv6Address: '',
    bytesReceived: inB,
    bytesSent: outB,
    connectedSince: since,
    username: '',
    clientId: cid,
    peerId: cid,
    cipher: 'AES-256-GCM',
  };
}

describe('session history: recorder, store, usage report, CSV', () => {
  let t: TempStore;
  let rec: SessionRecorder;
  let aliceSerial: string;
  let bobSerial: string;
  beforeEach(async () => {
    t = tempStore();
    const alice = await t.store.createUser({ name: 'alice', role: 'user', passwordHash: null });
    const bob = await t.store.createUser({ name: 'bob', role: 'user', passwordHash: null });
    aliceSerial = (await t.store.insertCert(newCert({ commonName: 'alice.laptop', ownerId: alice.id })))
      .serial;
    bobSerial = (
      await t.store.insertCert(newCert({ commonName: 'bob.phone', ownerId: bob.id, deviceName: 'phone' }))
    ).serial;
    rec = new SessionRecorder(t.store, 'node-1');
  });
  afterEach(() => t.cleanup());

  it('records a session when first seen, updates its bytes, ends it when it is gone', async () => {
    await rec.record([client(1, 'alice.laptop', 100, 200)], at(60));
    await rec.record([client(1, 'alice.laptop', 5000, 9000)], at(120));
    let [row] = await t.store.listSessionHistory();
    assert.equal(row!.userName, 'alice');
    assert.equal(row!.deviceName, 'laptop');
    assert.equal(row!.serial, aliceSerial);
    assert.equal(row!.bytesIn, 5000);
    assert.equal(row!.bytesOut, 9000);
    assert.equal(row!.endedAt, null);
    await rec.record([], at(180));
    [row] = await t.store.listSessionHistory();
    assert.equal(row!.endReason, 'ended');
    assert.deepEqual(row!.endedAt, at(180));
    assert.equal(row!.bytesIn, 5000, 'bytes kept from the last reading');
  });

  it('end reasons: revoked certificate, disabled owner, server restart', async () => {
    await rec.record([client(1, 'alice.laptop', 1, 1), client(2, 'bob.phone', 1, 1)], at(60));
    await t.store.markRevoked(aliceSerial, 'keyCompromise', at(61));
    await t.store.updateUser((await t.store.getUserByName('bob'))!.id, { disabled: true });
    await rec.record([], at(120));
    const byCn = Object.fromEntries(
      (await t.store.listSessionHistory()).map((r) => [r.commonName, r.endReason]),
    );
    assert.deepEqual(byCn, { 'alice.laptop': 'revoked', 'bob.phone': 'disabled' });
    void bobSerial;
    await rec.record([client(3, 'alice.laptop', 7, 7, at(200))], at(220));
    assert.equal(await rec.closeAll('server-restart'), 1);
    const last = (await t.store.listSessionHistory({ limit: 1 }))[0]!;
    assert.equal(last.endReason, 'server-restart');
    assert.deepEqual(last.endedAt, at(220), 'a session closed by a restart ends at its last reading');
  });

  it('the same client id reused by a new session (openvpn restarted) is a new row', async () => {
    await rec.record([client(1, 'alice.laptop', 10, 10)], at(60));
    await rec.closeAll('server-restart');
    await rec.record([client(1, 'alice.laptop', 3, 3, at(100))], at(120));
    assert.equal((await t.store.listSessionHistory()).length, 2);
  });

  it('usage report has every day of the period; prune removes only old ended sessions', async () => {
    await rec.record([client(1, 'alice.laptop', 1000, 2000)], at(60));
    await rec.record([], at(120));
    await rec.record([client(2, 'bob.phone', 10, 20, at(86_400))], at(86_460));
    const usage = new UsageService(t.store, () => at(2 * 86_400));
    const r = await usage.report(30);
    assert.equal(r.days.length, 30);
    assert.deepEqual(r.days.slice(-3), [
      { day: '2026-12-01', sessions: 1, bytes: 3000 },
      { day: '2026-12-02', sessions: 1, bytes: 30 },
      { day: '2026-12-03', sessions: 0, bytes: 0 },
    ]);
    assert.deepEqual(
      r.byUser.map((u) => [u.key, u.sessions]),
      [
        ['alice', 1],
        ['bob', 1],
      ],
    );
    assert.equal(await t.store.pruneSessionHistory(at(100)), 0, 'ended after the cut: kept');
    assert.equal(await t.store.pruneSessionHistory(at(121)), 1);
    assert.equal((await t.store.listSessionHistory()).length, 1, 'the open session is never pruned');
  });

  it('CSV: a header, one line per session, formulas defused, quotes doubled', async () => {
    await rec.record([client(1, 'alice.laptop', 1, 2)], at(60));
    const rows = await t.store.listSessionHistory();
    rows[0]!.deviceName = '=cmd|"x"';
    const csv = sessionsCsv(rows).split('\r\n');
    assert.equal(
      csv[0],
      'started_at,ended_at,user,device,common_name,replica,real_address,tunnel_address,bytes_in,bytes_out,end_reason',
    );
    assert.equal(
      csv[1],
      `2026-12-01T10:00:00.000Z,,alice,"'=cmd|""x""",alice.laptop,node-1,172.18.1.2:40001,10.140.0.2,1,2,`,
    );
    assert.equal(csv.length, 3);
  });

  it('--since: durations and dates; anything else is a 400 naming the field', () => {
    assert.deepEqual(parseSince('since', '7d', at(0)), new Date(T0.getTime() - 7 * 86_400_000));
    assert.deepEqual(parseSince('since', '2026-11-01', at(0)), new Date('2026-11-01T00:00:00.000Z'));
    assert.throws(() => parseSince('since', 'last week', at(0)), { field: 'since' });
  });
});
