/**
 * The management client against a real openvpn 2.6 server in a namespace: password auth, `status 3`
 * with two live sessions (CIDs, virtual addresses, dco flag), `client-kill CID HALT` makes the client
 * exit with server-pushed-halt, a plain `client-kill` makes it reconnect, and errors come back as AppError.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { ManagementClient, withManagement } from '../../src/openvpn/management-client.js';
import { sessionsOf } from '../../src/openvpn/status.js';
import { cleanupAll, officeNodePod, type SpawnedProcess, type Topology } from '../helpers/netns.js';
import { requireNetns } from '../helpers/topology.js';
import {
  makeServerDir,
  makeTestPki,
  startClient,
  startServer,
  testClientProfile,
  testVpnConfig,
  waitClientConnected,
  waitServerReady,
  writeServerFiles,
  type ServerFilesOut,
  type TestPki,
  PUSHED_HALT,
} from '../helpers/openvpn.js';

describe('e2e: openvpn management client against openvpn 2.6', function () {
  this.timeout(120_000);
  let topo: Topology;
  let pki: TestPki;
  let files: ServerFilesOut;
  let dir: string;

  before(async function () {
    await requireNetns(this);
    topo = await officeNodePod({ prefix: 'pgm' });
    pki = await makeTestPki();
    dir = makeServerDir();
    files = writeServerFiles(dir, pki, testVpnConfig({ port: 30031 }));
    const server = startServer(topo.name('node'), files);
    await waitServerReady(server);
  });
  after(async () => {
    await cleanupAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const mgmt = () => ({ socketPath: files.managementSocket, password: files.managementPassword });

  async function connectClient(cn: string) {
    const { profile } = await testClientProfile(pki, cn, { port: 30031 });
    const p = startClient(topo.name('office'), dir, cn, profile, ['--connect-retry', '1', '1']);
    await waitClientConnected(p);
    return p;
  }

  const procs: Record<string, SpawnedProcess> = {};

  it('authenticates and reads status 3 with two sessions', async () => {
    const alice = await connectClient('alice.laptop');
    procs.bob = await connectClient('bob.laptop');
    const status = await withManagement(mgmt(), (m) => m.status());
    assert.match(status.title, /^OpenVPN 2\.6/);
    assert.equal(status.clients.length, 2);
    const [a] = sessionsOf(status, 'alice.laptop');
    assert.ok(a, 'alice listed');
    assert.match(a.virtualAddress, /^10\.140\.0\.\d+$/);
    assert.match(a.realAddress, /^172\.18\.12\.100:\d+$/);
    assert.ok(Number.isInteger(a.clientId));
    assert.equal(a.cipher, 'AES-256-GCM');
    assert.ok(
      status.routes.some((r) => r.commonName === 'alice.laptop' && r.virtualAddress === a.virtualAddress),
    );
    assert.ok('dco_enabled' in status.globalStats);
    assert.equal(typeof status.dcoEnabled, 'boolean');
    assert.ok(alice.running);
  });

  it('client-kill without HALT makes the client reconnect; with HALT it exits with server-pushed-halt', async () => {
    const m = await ManagementClient.connect(mgmt());
    try {
      const before = sessionsOf(await m.status(), 'alice.laptop')[0]!;
      await m.clientKill(before.clientId, false);
      let after = before;
      for (let i = 0; i < 100 && after.clientId === before.clientId; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = sessionsOf(await m.status(), 'alice.laptop')[0] ?? before;
      }
      assert.notEqual(after.clientId, before.clientId, 'alice reconnected with a new CID');
      const bob = sessionsOf(await m.status(), 'bob.laptop')[0]!;
      await m.clientKill(bob.clientId, true);
    } finally {
      m.close();
    }
    const exit = await procs.bob!.exited;
    assert.match(procs.bob!.output(), PUSHED_HALT);
    assert.equal(exit.code, 0);
  });

  it('an ERROR reply rejects with an AppError and the session stays usable', async () => {
    await withManagement(mgmt(), async (m) => {
      await assert.rejects(
        m.clientKill(999_999, true),
        (e: Error & { status?: number }) => e.status === 502 && /client-kill/.test(e.message),
      );
      const s = await m.status();
      assert.ok(s.clients.length >= 1);
    });
  });

  it('a wrong password is refused', async () => {
    await assert.rejects(
      ManagementClient.connect({ socketPath: files.managementSocket, password: 'wrong' }),
      /refused the password/,
    );
  });
});
