/**
 * The namespace helper itself: the office ─ node ─ pod topology behaves like the design says (the pod
 * cannot answer the office without NAT on the node; ClusterIP DNAT works), processes die with the
 * namespace, and cleanup leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { exec } from '../../src/lib/exec.js';
import {
  cleanupAll,
  officeNodePod,
  startEchoServer,
  tcpProbe,
  OFFICE_NODE_POD as A,
  type Topology,
} from '../helpers/netns.js';
import { requireNetns, until } from '../helpers/topology.js';

describe('e2e: test/helpers/netns', function () {
  this.timeout(60_000);
  let topo: Topology;

  before(async function () {
    await requireNetns(this);
    topo = await officeNodePod({ prefix: 'pgh' });
    await startEchoServer(topo.name('pod'), '0.0.0.0', 7007);
    await startEchoServer(topo.name('node'), A.node, 7007);
  });
  after(cleanupAll);

  it('office reaches the node, the node reaches the pod', async () => {
    assert.equal(await tcpProbe(topo.name('office'), A.node, 7007), true);
    assert.equal(await tcpProbe(topo.name('node'), A.pod, 7007), true);
  });

  it('the pod cannot answer the office until the node masquerades', async () => {
    await topo.run('office', ['ip', 'route', 'add', A.podCidr, 'via', A.node]);
    await topo.run('office', ['ip', 'route', 'add', A.serviceCidr, 'via', A.node]);
    assert.equal(await tcpProbe(topo.name('office'), A.pod, 7007, 1000), false);
    await topo.iptables('node', [
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-s',
      '172.18.12.0/24',
      '-o',
      topo.ifaces['node:pod']!,
      '-j',
      'MASQUERADE',
    ]);
    assert.equal(await tcpProbe(topo.name('office'), A.pod, 7007), true);
    assert.equal(await tcpProbe(topo.name('office'), A.clusterIp, 7007), true, 'ClusterIP DNAT on the node');
  });

  it('a spawned process is killed with its group and the namespaces are removed', async () => {
    const p = topo.spawn('pod', ['sh', '-c', 'sleep 300 & echo started; wait']);
    await p.waitFor(/started/);
    const ns = Object.values(topo.ns);
    const pids = async () =>
      (await exec(['ip', 'netns', 'pids', topo.name('pod')])).stdout.trim().split('\n');
    const before = await pids();
    await p.stop();
    // `stop()` resolves when sh exits; its sleep child, killed by the same group signal, is reaped by
    // init a moment later and is listed until then.
    let after = await pids();
    await until(
      async () => (after = await pids()).length <= before.length - 2,
      5000,
      'sleep to leave the namespace',
    ).catch(() => undefined);
    assert.equal(before.length - after.length, 2, 'sh and its sleep child both gone');
    await cleanupAll();
    const list = (await exec(['ip', 'netns', 'list'])).stdout;
    for (const n of ns) assert.ok(!list.includes(n), `${n} deleted`);
  });
});
