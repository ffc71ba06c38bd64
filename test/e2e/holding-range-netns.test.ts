/**
 * A device with no client-config-dir file yet, on a server that reads one without `ccd-exclusive` (each
 * of several replicas in `open` mode): real openvpn 2.6 in network namespaces, server.conf rendered by
 * podgate.
 *
 *   office  (dev.a, has a file: 10.140.0.2) ─┐
 *                                             ├─ node 172.18.12.21 (openvpn, MASQUERADE) ── pod 10.244.1.5
 *   office2 (dev.b, no file yet)            ─┘
 *
 * openvpn's pool does not know the addresses the files give: it used to hand dev.b the lowest free pool
 * address, 10.140.0.2, which the manager had given dev.a; openvpn then routed dev.a's answers to dev.b.
 * Now its pool is the holding range only (lib/cidr.ts `holdingRange`), which the manager never gives out.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdingRange, intToIpv4, ipv4ToInt } from '../../src/lib/cidr.js';
import { addressPool } from '../../src/services/addresses.js';
import {
  cleanupAll,
  officeNodePod,
  startEchoServer,
  tcpProbe,
  OFFICE_NODE_POD as A,
  type SpawnedProcess,
  type Topology,
} from '../helpers/netns.js';
import {
  clientProfile,
  clientTlsKey,
  makeServerDir,
  makeTestPki,
  startClient,
  startServer,
  testVpnConfig,
  waitClientConnected,
  waitServerReady,
  writeServerFiles,
  type TestPki,
} from '../helpers/openvpn.js';
import { requireNetns } from '../helpers/topology.js';

const PORT = 30030;
const OFFICE2 = { office: '172.18.13.100', node: '172.18.13.21' };

describe('e2e: a device without a client-config-dir file never takes a listed device address', function () {
  this.timeout(120_000);
  let topo: Topology;
  let dir: string;
  let pki: TestPki;
  const procs: SpawnedProcess[] = [];

  before(async function () {
    await requireNetns(this);
    topo = await officeNodePod({ prefix: 'pgho', clusterIp: false });
    await topo.link('office2', `${OFFICE2.office}/24`, 'node', `${OFFICE2.node}/24`);
    await topo.iptables('node', [
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-s',
      '10.140.0.0/16',
      '-j',
      'MASQUERADE',
    ]);
    await startEchoServer(topo.name('pod'), '0.0.0.0', 7007);
    dir = makeServerDir('pg-holding-');
    pki = await makeTestPki();
  });
  after(async () => {
    for (const p of procs) await p.stop().catch(() => undefined);
    await cleanupAll();
    await topo?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function connect(ns: string, remote: string, cn: string): Promise<SpawnedProcess> {
    const cert = await pki.issueClient(cn);
    const profile = clientProfile({
      remote,
      port: PORT,
      cn,
      certPem: cert.certPem,
      keyPem: cert.keyPem,
      caPem: pki.caPem,
      tlsCryptV2KeyPem: clientTlsKey(pki),
    });
    const p = startClient(ns, dir, cn, profile);
    procs.push(p);
    await waitClientConnected(p, 30_000);
    return p;
  }
  const address = (p: SpawnedProcess) => /net_addr_v4_add: ([\d.]+)\/\d+ dev tun/.exec(p.output())?.[1];

  it('the newcomer gets a holding-range address; both devices reach the pod', async () => {
    const subnet = '10.140.0.0/16';
    const first = intToIpv4(addressPool(subnet).first); // what the manager gives its first device
    const ccd = join(dir, 'ccd');
    mkdirSync(ccd, { mode: 0o755 });
    writeFileSync(join(ccd, 'dev.a'), `ifconfig-push ${first} 255.255.0.0\n`, { mode: 0o644 });
    const files = writeServerFiles(dir, pki, testVpnConfig({ port: PORT, clientSubnet: subnet }), {
      dir: ccd,
      exclusive: false,
    });
    const server = startServer(topo.name('node'), files);
    procs.push(server);
    await waitServerReady(server);

    const a = await connect(topo.name('office'), A.node, 'dev.a');
    const b = await connect(topo.name('office2'), OFFICE2.node, 'dev.b');
    assert.equal(address(a), first);
    // with one address for both, openvpn routed dev.a's answers to dev.b: dev.a reached nothing
    assert.equal(await tcpProbe(topo.name('office'), A.pod, 7007), true, 'dev.a reaches the pod');
    assert.equal(await tcpProbe(topo.name('office2'), A.pod, 7007), true, 'dev.b reaches the pod');
    const hold = holdingRange(subnet)!;
    const got = ipv4ToInt(address(b) ?? '0.0.0.0');
    assert.ok(
      got >= hold.first && got <= hold.last,
      `dev.b has ${address(b)}, not an address from the holding range (${intToIpv4(hold.first)}–${intToIpv4(hold.last)})`,
    );
  });
});
