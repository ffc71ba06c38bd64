/**
 * The cluster agent path end to end, with everything real except the API server: a real openvpn 2.6 in
 * a network namespace, real clients dialing it from an "office" namespace, and `startClusterAgent`
 * (what `podgate agent --cluster` runs) watching the podgate-crl Secret on the real control plane
 * (test/helpers/real-cluster.ts, a namespace of its own) through the real @kubernetes/client-node. A Secret update revokes a connected client: the CRL file is replaced,
 * the client is cut with server-pushed-halt, cannot reconnect, the other client stays, and the agent
 * reports the CRL number in the status ConfigMap. The agent reaches the API server through a TCP relay
 * that can reset its connections (a real connection loss; the shared API server keeps running): after
 * a reset the next revocation still cuts its client.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { readAgentStatus } from '../../../src/cluster/agent-status.js';
import { startClusterAgent, type RunningClusterAgent } from '../../../src/cluster/agent-runner.js';
import { crlSecret } from '../../../src/cluster/manifests.js';
import { SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import { withManagement } from '../../../src/openvpn/management-client.js';
import { sessionsOf } from '../../../src/openvpn/status.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import {
  adminKubeApi,
  adminKubeConfigVia,
  adminRest,
  dropNamespace,
  freshNamespace,
  realCluster,
  tcpRelay,
  type TcpRelay,
} from '../../helpers/real-cluster.js';
import {
  canUseNetns,
  cleanupAll,
  officeNodePod,
  startEchoServer,
  tcpProbe,
  OFFICE_NODE_POD as A,
  type SpawnedProcess,
  type Topology,
} from '../../helpers/netns.js';
import {
  makeServerDir,
  masqueradeClients,
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
} from '../../helpers/openvpn.js';

describe('cluster agent: Secret watch on the real API server -> real openvpn cuts the revoked client', function () {
  this.timeout(120_000);
  let topo: Topology;
  let pki: TestPki;
  let files: ServerFilesOut;
  let dir: string;
  let cp: ControlPlane | undefined;
  let NS = '';
  let relay: TcpRelay | undefined;
  let server: SpawnedProcess;
  let running: RunningClusterAgent | undefined;

  before(async function () {
    if (!(await canUseNetns())) {
      if (process.env.CI === 'true') throw new Error('network namespaces need root + iproute2');
      this.skip();
    }
    setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent');
    topo = await officeNodePod({ prefix: 'pgk' });
    await masqueradeClients(topo);
    pki = await makeTestPki();
    dir = makeServerDir('pg-k8s-agent-');
    files = writeServerFiles(dir, pki, testVpnConfig({ port: 30030 }));
    server = startServer(topo.name('node'), files);
    await waitServerReady(server);
    cp = await realCluster();
    NS = await freshNamespace(cp, 'agent-vpn');
    relay = await tcpRelay(cp);
    await adminRest(cp, 'POST', `/api/v1/namespaces/${NS}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'podgate-agent-status', namespace: NS },
    });
    const initial = {
      crlNumber: 1,
      crlPem: readFileSync(files.crlPath, 'utf8'),
      revoked: [],
      reissuedCommonNames: [],
    };
    const created = await adminRest(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, crlSecret(NS, initial));
    assert.equal(created.status, 201, JSON.stringify(created.body));
  });
  after(async () => {
    await running?.stop();
    relay?.close();
    if (cp && NS) await dropNamespace(cp, NS);
    await cleanupAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function connect(cn: string, cert?: { serial: string; certPem: string; keyPem: string }) {
    const { profile, cert: c } = await testClientProfile(pki, cn, { port: 30030, ...(cert ? { cert } : {}) });
    const p = startClient(topo.name('office'), dir, `${cn}-${Date.now()}`, profile, [
      '--connect-retry',
      '1',
      '1',
    ]);
    return { p, cert: c };
  }

  it('a Secret update reaches the running openvpn and the revoked client is cut', async () => {
    const kube = adminKubeApi(cp!);
    running = await startClusterAgent({
      // The agent's own connections go through the relay, so a test can reset them.
      kube: createKubeApi(adminKubeConfigVia(cp!, relay!.url), { timeoutMs: 10_000 }),
      namespace: NS,
      podName: 'podgate-openvpn-test',
      caCertPem: pki.caPem,
      crlFile: files.crlPath,
      managementSocket: files.managementSocket,
      managementPassword: files.managementPassword,
      retryMs: 50,
    });
    assert.equal(running.agent.crlNumber, 1);

    const alice = await connect('alice.laptop');
    await waitClientConnected(alice.p);
    // Through the tunnel to the "pod" (only the node's NAT lets it answer): the data plane works.
    await startEchoServer(topo.name('pod'), A.pod, 8080);
    assert.equal(
      await tcpProbe(topo.name('office'), A.pod, 8080, 5000),
      true,
      'office reaches the pod through the tunnel',
    );
    const bob = await connect('bob.laptop');
    await waitClientConnected(bob.p);

    const revokedAt = new Date();
    const crl2 = pki.nextCrl(alice.cert.serial);
    const t0 = process.hrtime.bigint();
    await new SecretCrlPublisher(kube, NS).publish({
      crlNumber: pki.crlNumber,
      crlPem: crl2,
      revoked: [
        { serial: alice.cert.serial, commonName: 'alice.laptop', revokedAt: revokedAt.toISOString() },
      ],
      reissuedCommonNames: [],
    });
    const exit = await alice.p.exited;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`      Secret update -> revoked client exited: ${ms.toFixed(0)} ms`);
    assert.match(alice.p.output(), PUSHED_HALT);
    assert.equal(exit.code, 0);
    assert.equal(
      readFileSync(files.crlPath, 'utf8').trim(),
      crl2.trim(),
      'CRL file replaced before the kill',
    );
    assert.equal(running.agent.crlNumber, pki.crlNumber);

    // Bob is untouched.
    const mgmt = { socketPath: files.managementSocket, password: files.managementPassword };
    let status = await withManagement(mgmt, (m) => m.status());
    // The server drops the halted session a few seconds later (it waits for the client to go, ~5 s).
    for (let i = 0; i < 200 && sessionsOf(status, 'alice.laptop').length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await withManagement(mgmt, (m) => m.status());
    }
    assert.equal(sessionsOf(status, 'alice.laptop').length, 0);
    assert.equal(sessionsOf(status, 'bob.laptop').length, 1);
    assert.ok(bob.p.running);

    // The agent reported back through the status ConfigMap.
    let st = await readAgentStatus(kube, NS);
    for (let i = 0; i < 50 && st.lastAppliedCrlNumber !== 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      st = await readAgentStatus(kube, NS);
    }
    assert.equal(st.lastAppliedCrlNumber, 2);
    assert.equal(st.pod, 'podgate-openvpn-test');
    assert.deepEqual(
      st.effective.map((e) => [e.serial, e.commonName, e.sessionsKilled]),
      [[alice.cert.serial, 'alice.laptop', 1]],
    );

    // The same certificate cannot come back: the server refuses it on the new CRL.
    const again = await connect('alice.laptop', alice.cert);
    await server.waitFor(/CRL CHECK FAILED|certificate revoked/i, 20_000);
    again.p.kill();
  });

  it('after the connections to the API server are reset under the watch, the next revocation still arrives', async () => {
    const kube = adminKubeApi(cp!);
    const carol = await connect('carol.laptop');
    await waitClientConnected(carol.p);
    const watches = running!.source.stats.watches;
    relay!.cut();
    for (let i = 0; i < 300 && running!.source.stats.watches === watches; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok(running!.source.stats.watches > watches, 'the agent watches again after the reset');
    const crl3 = pki.nextCrl(carol.cert.serial);
    await new SecretCrlPublisher(kube, NS).publish({
      crlNumber: pki.crlNumber,
      crlPem: crl3,
      revoked: [
        { serial: carol.cert.serial, commonName: 'carol.laptop', revokedAt: new Date().toISOString() },
      ],
      reissuedCommonNames: [],
    });
    await carol.p.exited;
    assert.match(carol.p.output(), PUSHED_HALT);
    assert.equal(running!.agent.crlNumber, pki.crlNumber);
  });
});
