/**
 * The agent core with a real CA and real CRLs (podgate's pki), real files, a real SQLite store for the
 * reporter, and an in-memory management interface that records what is killed and checks that the new
 * CRL is already on disk when the first kill arrives (a session killed earlier would reconnect on the
 * old CRL).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CrlRefused,
  RevocationAgent,
  type AgentReporter,
  type AppliedReport,
  type PendingReport,
} from '../../../src/openvpn/agent.js';
import { ManagementCommandFailed, type ManagementApi } from '../../../src/openvpn/management-client.js';
import type { ClientSession, ServerStatus } from '../../../src/openvpn/status.js';
import type { RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';
import { LocalCrlPublisher } from '../../../src/openvpn/local-publisher.js';
import { LocalBundleSource } from '../../../src/openvpn/local-source.js';
import { StoreAgentReporter } from '../../../src/openvpn/store-reporter.js';
import { Upstream } from '../../../src/lib/errors.js';
import { openStore } from '../../../src/store/index.js';
import { makeTestPki, type TestPki } from '../../helpers/openvpn.js';

function session(commonName: string, clientId: number): ClientSession {
  return {
    commonName,
    clientId,
    realAddress: `172.18.12.100:${40000 + clientId}`,
    virtualAddress: `10.140.0.${clientId + 2}`,
    virtualIpv6Address: '',
    bytesReceived: 0,
    bytesSent: 0,
    connectedSince: new Date(),
    username: 'UNDEF',
    peerId: clientId,
    cipher: 'AES-256-GCM',
  };
}

class FakeManagement {
  sessions: ClientSession[] = [];
  kills: { cid: number; halt: boolean; crlOnDisk: string }[] = [];
  down = false;
  /** Thrown by the next client-kill calls instead of killing. */
  killError: Error | undefined;
  constructor(private readonly crlFile: string) {}
  connect = async (): Promise<ManagementApi> => {
    if (this.down) throw new Upstream('openvpn management: connect ENOENT');
    return {
      command: async () => [],
      status: async (): Promise<ServerStatus> => ({
        title: 'OpenVPN 2.6.14',
        time: new Date(),
        clients: [...this.sessions],
        routes: [],
        globalStats: {},
        dcoEnabled: false,
        handshaking: [],
      }),
      clientKill: async (cid: number, halt: boolean) => {
        if (this.killError) throw this.killError;
        this.kills.push({ cid, halt, crlOnDisk: readFileSync(this.crlFile, 'utf8') });
        this.sessions = this.sessions.filter((s) => s.clientId !== cid);
      },
      close: () => undefined,
    };
  };
}

describe('openvpn/agent', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: TestPki;
  let crlFile: string;
  let mgmt: FakeManagement;
  const applied: AppliedReport[] = [];
  const pendings: PendingReport[] = [];
  const reporter: AgentReporter = {
    applied: (r) => void applied.push(r),
    pending: (p) => void pendings.push(p),
  };

  function bundle(revoked: { serial: string; cn: string }[], reissued: string[] = []): RevocationBundle {
    const crlPem = pki.nextCrl();
    return {
      crlNumber: pki.crlNumber,
      crlPem,
      revoked: revoked.map((r) => ({
        serial: r.serial,
        commonName: r.cn,
        revokedAt: new Date().toISOString(),
      })),
      reissuedCommonNames: reissued,
    };
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-agent-'));
    crlFile = join(dir, 'openvpn-crl.pem');
    pki = await makeTestPki();
    mgmt = new FakeManagement(crlFile);
    applied.length = 0;
    pendings.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the verified CRL (0644) first, then kills every session of the revoked CN with HALT', async () => {
    const alice = await pki.issueClient('alice.laptop');
    mgmt.sessions = [session('alice.laptop', 1), session('bob.laptop', 2), session('alice.laptop', 3)];
    const agent = new RevocationAgent({ caCertPem: pki.caPem, crlFile, connect: mgmt.connect, reporter });
    pki.revoked.push({ serial: alice.serial, revokedAt: new Date(), reason: 'keyCompromise' });
    const b = bundle([{ serial: alice.serial, cn: 'alice.laptop' }]);
    const r = await agent.apply(b);
    assert.equal(readFileSync(crlFile, 'utf8').trim(), b.crlPem.trim());
    assert.equal(statSync(crlFile).mode & 0o777, 0o644);
    assert.deepEqual(
      mgmt.kills.map((k) => [k.cid, k.halt]),
      [
        [1, true],
        [3, true],
      ],
    );
    for (const k of mgmt.kills)
      assert.equal(k.crlOnDisk.trim(), b.crlPem.trim(), 'CRL in place before the kill');
    assert.deepEqual(
      mgmt.sessions.map((s) => s.commonName),
      ['bob.laptop'],
    );
    assert.equal(r.killed.length, 2);
    assert.equal(applied.length, 1);
    assert.equal(applied[0]!.revoked[0]!.serial, alice.serial);
    assert.equal(agent.crlNumber, b.crlNumber);
  });

  it('kills a re-issued common name without HALT, and only once', async () => {
    const old = await pki.issueClient('carol.phone');
    mgmt.sessions = [session('carol.phone', 5)];
    const agent = new RevocationAgent({ caCertPem: pki.caPem, crlFile, connect: mgmt.connect, reporter });
    pki.revoked.push({ serial: old.serial, revokedAt: new Date(), reason: 'superseded' });
    await agent.apply(bundle([{ serial: old.serial, cn: 'carol.phone' }], ['carol.phone']));
    assert.deepEqual(
      mgmt.kills.map((k) => [k.cid, k.halt]),
      [[5, false]],
    );
    mgmt.sessions = [session('carol.phone', 6)]; // the valid certificate reconnected
    await agent.apply(bundle([{ serial: old.serial, cn: 'carol.phone' }], ['carol.phone'])); // daily re-sign
    assert.equal(mgmt.kills.length, 1, 'the reconnected valid session is left alone');
  });

  it('after an agent restart, leaves sessions that began once the CRL was in force', async () => {
    const old = await pki.issueClient('gina.laptop');
    pki.revoked.push({ serial: old.serial, revokedAt: new Date(), reason: 'superseded' });
    const b = bundle([{ serial: old.serial, cn: 'gina.laptop' }], ['gina.laptop']);
    new RevocationAgent({ caCertPem: pki.caPem, crlFile, connect: mgmt.connect, reporter }).prime(b);
    // openvpn kept running; the agent restarts and sees the same bundle again.
    const before = { ...session('gina.laptop', 1), connectedSince: new Date(Date.now() - 10_000) };
    const after = { ...session('gina.laptop', 2), connectedSince: new Date(Date.now() + 5_000) };
    mgmt.sessions = [before, after];
    const restarted = new RevocationAgent({ caCertPem: pki.caPem, crlFile, connect: mgmt.connect, reporter });
    await restarted.apply(b);
    assert.deepEqual(
      mgmt.kills.map((k) => [k.cid, k.halt]),
      [[1, false]],
      'only the session older than the CRL',
    );
  });

  it('ignores bundle entries the signed CRL does not list', async () => {
    mgmt.sessions = [session('dave.laptop', 7)];
    const agent = new RevocationAgent({ caCertPem: pki.caPem, crlFile, connect: mgmt.connect, reporter });
    await agent.apply(bundle([{ serial: 'ABCDEF01', cn: 'dave.laptop' }]));
    assert.equal(mgmt.kills.length, 0);
  });

  it('refuses another issuer, an expired CRL and an older number, leaving the file alone', async () => {
    const agent = new RevocationAgent({ caCertPem: pki.caPem, crlFile, connect: mgmt.connect, reporter });
    const good = bundle([]);
    await agent.apply(good);
    const other = await makeTestPki();
    other.crlNumber = 50;
    const foreign = other.nextCrl();
    await assert.rejects(agent.apply({ ...good, crlNumber: 51, crlPem: foreign }), /issuer is not this CA/);
    const older = bundle([]);
    const newer = bundle([]);
    await agent.apply(newer);
    await assert.rejects(
      agent.apply(older),
      (e: Error & { status?: number }) => e.status === 409 && /older than the one in force/.test(e.message),
    );
    const future = new RevocationAgent({
      caCertPem: pki.caPem,
      crlFile,
      connect: mgmt.connect,
      reporter,
      now: () => new Date(Date.now() + 60 * 86_400_000),
    });
    await assert.rejects(future.apply(bundle([])), /nextUpdate/);
    assert.equal(readFileSync(crlFile, 'utf8').trim(), newer.crlPem.trim());
  });

  it('refusals are CrlRefused saying why, from apply and from prime alike; the file stays', async () => {
    const agent = new RevocationAgent({ caCertPem: pki.caPem, crlFile, connect: mgmt.connect, reporter });
    const older = bundle([]);
    const current = bundle([]);
    await agent.apply(current);
    const refusal = (why: string) => (e: unknown) => e instanceof CrlRefused && e.refusal === why;
    const other = await makeTestPki();
    const foreign = other.nextCrl();
    await assert.rejects(
      agent.apply({ ...current, crlNumber: other.crlNumber, crlPem: foreign }),
      refusal('unverified'),
    );
    assert.throws(
      () => agent.prime({ ...current, crlNumber: other.crlNumber, crlPem: foreign }),
      refusal('unverified'),
    );
    await assert.rejects(agent.apply(older), refusal('older'));
    assert.throws(() => agent.prime(older), refusal('older'));
    const twin = bundle([]);
    const sameNumber = {
      ...twin,
      crlNumber: current.crlNumber,
      crlPem: pki.ca.buildCrl({ number: current.crlNumber, entries: [], nextUpdateDays: 20 }),
    };
    await assert.rejects(agent.apply(sameNumber), refusal('conflicting'));
    assert.throws(() => agent.prime(sameNumber), refusal('conflicting'));
    await assert.rejects(
      agent.apply({ ...twin, crlNumber: twin.crlNumber + 1 }),
      refusal('mismatched-bundle'),
    );
    assert.equal(readFileSync(crlFile, 'utf8').trim(), current.crlPem.trim());
  });

  it('a session gone before client-kill (openvpn answers ERROR) is done; a broken connection is pending', async () => {
    const agent = new RevocationAgent({ caCertPem: pki.caPem, crlFile, connect: mgmt.connect, reporter });
    const hank = await pki.issueClient('hank.laptop');
    pki.revoked.push({ serial: hank.serial, revokedAt: new Date(), reason: 'keyCompromise' });
    mgmt.sessions = [session('hank.laptop', 4)];
    mgmt.killError = new ManagementCommandFailed('client-kill', 'client-kill command failed');
    const gone = await agent.apply(bundle([{ serial: hank.serial, cn: 'hank.laptop' }]));
    assert.deepEqual([gone.pending, gone.killed.length, applied.length, pendings.length], [false, 0, 1, 0]);

    const ivy = await pki.issueClient('ivy.laptop');
    pki.revoked.push({ serial: ivy.serial, revokedAt: new Date(), reason: 'keyCompromise' });
    mgmt.sessions = [session('ivy.laptop', 5)];
    mgmt.killError = new Upstream('openvpn management: connection closed');
    const broken = await agent.apply(bundle([{ serial: ivy.serial, cn: 'ivy.laptop' }]));
    agent.stop();
    assert.equal(broken.pending, true);
    assert.deepEqual(
      pendings.map((p) => p.revoked.map((r) => r.serial)),
      [[ivy.serial]],
    );
  });

  it('reports pending while the management socket is down and applies when it is back', async () => {
    const eve = await pki.issueClient('eve.laptop');
    mgmt.sessions = [session('eve.laptop', 9)];
    mgmt.down = true;
    const agent = new RevocationAgent({
      caCertPem: pki.caPem,
      crlFile,
      connect: mgmt.connect,
      reporter,
      retryInitialMs: 20,
      retryMaxMs: 50,
    });
    pki.revoked.push({ serial: eve.serial, revokedAt: new Date(), reason: 'keyCompromise' });
    const b = bundle([{ serial: eve.serial, cn: 'eve.laptop' }]);
    const r = await agent.apply(b);
    assert.equal(r.pending, true);
    assert.equal(readFileSync(crlFile, 'utf8').trim(), b.crlPem.trim(), 'CRL in force even while pending');
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(pendings.length, 1, 'pending reported once despite retries');
    assert.equal(applied.length, 0);
    mgmt.down = false;
    for (let i = 0; i < 50 && applied.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    agent.stop();
    assert.deepEqual(
      mgmt.kills.map((k) => [k.cid, k.halt]),
      [[9, true]],
    );
    assert.equal(applied[0]!.revoked[0]!.serial, eve.serial);
  });

  it('publisher -> local source -> agent -> store reporter: audit rows revocation.effective, pending cleared', async () => {
    const store = openStore(dir);
    const frank = await pki.issueClient('frank.laptop');
    mgmt.sessions = [session('frank.laptop', 4)];
    const serverDir = join(dir, 'server');
    const agent = new RevocationAgent({
      caCertPem: pki.caPem,
      crlFile,
      connect: mgmt.connect,
      reporter: new StoreAgentReporter(store),
    });
    const source = new LocalBundleSource({ dir: serverDir, onBundle: (b) => agent.apply(b), pollMs: 50 });
    const publisher = new LocalCrlPublisher(serverDir);
    await publisher.publish(bundle([]));
    await source.start();
    try {
      pki.revoked.push({ serial: frank.serial, revokedAt: new Date(), reason: 'keyCompromise' });
      await publisher.publish(bundle([{ serial: frank.serial, cn: 'frank.laptop' }]));
      for (let i = 0; i < 100 && mgmt.kills.length === 0; i++)
        await new Promise((res) => setTimeout(res, 10));
      assert.deepEqual(
        mgmt.kills.map((k) => k.cid),
        [4],
      );
      const rows = await store.listAudit({ action: 'revocation.effective' });
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.target, 'frank.laptop');
      assert.equal(rows[0]!.details.serial, frank.serial);
      assert.equal(rows[0]!.details.sessionsKilled, 1);
      assert.equal((await store.listPending()).length, 0);
      writeFileSync(join(serverDir, 'revocations.json'), '{"not":"a bundle"}');
      await new Promise((res) => setTimeout(res, 150)); // a broken file is logged, not fatal
      assert.equal(agent.crlNumber, pki.crlNumber);
    } finally {
      source.stop();
      await store.close();
    }
  });
});
