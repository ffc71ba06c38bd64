/**
 * Dual stack through `podgate server run`, in network namespaces:
 *
 *   office (alice) 172.18.12.100 ── node 172.18.12.21 ──── pod 10.244.1.5 + fd00:10:244:1::5
 *                                   (server run, nft,       (echo :7007 on both, DNS on the IPv6 one;
 *                                    NAT + NAT66)            routes to the pod ranges via the node,
 *                                                            none to either client range)
 *
 * `vpn.clientSubnet6: fd00:140::/64`, `nat: true`, IPv6 pod range and DNS pushed. Checked: alice's device
 * gets its stable IPv4 address and the IPv6 one with the same host index (ccd `ifconfig-ipv6-push`); a
 * rule allowing only the IPv4 pod is enforced for both families (the IPv6 pod is dropped, DNS over IPv6
 * is always allowed); a rule naming the IPv6 pod opens it on the same live tunnel; the pod answers
 * without a route to fd00:140::/64 (NAT66); revoking the device cuts both families and refuses it; a
 * stopped server run leaves neither NAT rule behind.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TunnelSubnets } from '../../src/lib/tunnel-subnets.js';
import {
  dnsQuery,
  runIn,
  startDnsServer,
  startEchoServer,
  tcpProbe,
  type SpawnedProcess,
} from '../helpers/netns.js';
import { PUSHED_HALT, waitClientConnected } from '../helpers/openvpn.js';
import { count, requireNetns, REVOKED, until, VpnLab } from '../helpers/topology.js';

const POD4 = '10.244.1.5';
const POD6 = 'fd00:10:244:1::5';
const NODE6 = 'fd00:10:244:1::1';
const SUBNET6 = 'fd00:140::/64';

describe('e2e: dual stack through server run (IPv4 + IPv6 pods, NAT66, access rules, revoke)', function () {
  this.timeout(240_000);
  let lab: VpnLab;
  let alice: SpawnedProcess;
  let address4 = '';
  let address6 = '';
  const reach = (ip: string, timeoutMs = 1500) => tcpProbe(lab.topo.name('office'), ip, 7007, timeoutMs);
  const ping6 = async (ip: string) =>
    (await lab.topo.run('office', ['busybox', 'ping6', '-c', '1', '-W', '1', ip], { check: false })).code ===
    0;
  const apply = async (cidrs: string[]) => {
    const f = join(lab.work, `rules-${Date.now()}.yaml`);
    writeFileSync(
      f,
      JSON.stringify({
        rules: [
          {
            name: 'alice-pods',
            subjects: [{ kind: 'user', name: 'alice' }],
            destinations: cidrs.map((cidr) => ({ kind: 'cidr', cidr })),
          },
        ],
      }),
    );
    await lab.cli('access', 'apply', '-f', f);
  };

  before(async function () {
    await requireNetns(this);
    lab = await VpnLab.create({
      prefix: 'pgd6',
      podRoutes: ['fd00:10:244::/56'],
      vpn: ['  nat: true', `  clientSubnet6: ${SUBNET6}`, `  dns: { servers: ["${POD6}"] }`],
    });
    // The IPv6 half of the "cluster" network: node and pod on the same link, the pod routes the IPv6
    // pod range via the node and has no route to either client range.
    const node = lab.topo.name('node');
    const pod = lab.topo.name('pod');
    await runIn(node, ['ip', 'addr', 'add', `${NODE6}/64`, 'dev', lab.topo.ifaces['node:pod']!, 'nodad']);
    await runIn(pod, ['ip', 'addr', 'add', `${POD6}/64`, 'dev', lab.topo.ifaces['pod:node']!, 'nodad']);
    await runIn(pod, ['ip', '-6', 'route', 'add', 'fd00:10:244::/56', 'via', NODE6]);
    await runIn(node, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
    await startEchoServer(pod, '::', 7007); // both families
    await startDnsServer(pod, POD6, { 'web.team-a.svc.cluster.local': POD4 });

    await lab.init();
    await lab.cli('user', 'add', 'alice', '--password-file', join(lab.work, 'admin.pw'));
    const out = join(lab.work, 'alice.ovpn');
    await lab.cli('cert', 'issue', 'alice', '--owner', 'alice', '--out', out);
    lab.profiles.alice = readFileSync(out, 'utf8');
    await apply([`${POD4}/32`]);
    const published = JSON.parse(readFileSync(join(lab.dataDir, 'server', 'access.json'), 'utf8')) as {
      clients: { commonName: string; address: string }[];
    };
    address4 = published.clients.find((c) => c.commonName === 'alice')!.address;
    address6 = new TunnelSubnets('10.140.0.0/16', SUBNET6).address6(address4)!.address;
    await lab.startServerRun();
  });
  after(async () => {
    await lab?.close();
  });

  it('the server runs dual stack: server-ipv6, route-ipv6 and DNS6 pushed, NAT and NAT66 in place', async () => {
    const conf = readFileSync(join(lab.dataDir, 'server', 'server.conf'), 'utf8');
    assert.match(conf, /^server-ipv6 fd00:140::\/64$/m);
    assert.match(conf, /^push "route-ipv6 fd00:10:244::\/56"$/m);
    assert.match(conf, /^push "dhcp-option DNS6 fd00:10:244:1::5"$/m);
    const nat6 = (await lab.topo.run('node', ['ip6tables', '-w', '-t', 'nat', '-S', 'POSTROUTING'])).stdout;
    assert.match(nat6, /-s fd00:140::\/64 ! -d fd00:140::\/64 .*-j MASQUERADE/);
    const nat4 = (await lab.topo.iptables('node', ['-t', 'nat', '-S', 'POSTROUTING'])).stdout;
    assert.match(nat4, /-s 10\.140\.0\.0\/16 ! -d 10\.140\.0\.0\/16 .*-j MASQUERADE/);
  });

  it('alice gets both stable addresses; a rule for the IPv4 pod only is enforced for both families', async () => {
    alice = lab.client('alice');
    await waitClientConnected(alice);
    assert.match(alice.output(), new RegExp(`net_addr_v4_add: ${address4.replace(/\./g, '\\.')}/16`));
    assert.match(
      alice.output(),
      new RegExp(`net_addr_v6_add: ${address6}/64`),
      'the same host index in IPv6',
    );
    assert.equal(await reach(POD4), true, 'IPv4 pod allowed');
    assert.equal(await reach(POD6), false, 'IPv6 pod not named by the rule: dropped');
    assert.equal(await ping6(POD6), false, 'no ICMPv6 either');
    assert.equal(
      await dnsQuery(lab.topo.name('office'), POD6, 'web.team-a.svc.cluster.local'),
      POD4,
      'the cluster DNS over IPv6 is always reachable',
    );
    const table = (await lab.topo.run('node', ['nft', 'list', 'table', 'inet', 'podgate'])).stdout;
    assert.match(table, new RegExp(`elements = \\{ ${address6} \\}`), "alice's IPv6 address in her rule");
  });

  it('a rule naming the IPv6 pod opens it on the same tunnel: both families reach, no reconnect', async () => {
    await apply([`${POD4}/32`, `${POD6}/128`]);
    await until(() => reach(POD6, 300), 20_000, 'the IPv6 pod reachable');
    assert.equal(await reach(POD4), true);
    assert.equal(await reach(POD6), true, 'the pod answers without a route to fd00:140::/64: NAT66');
    assert.equal(await ping6(POD6), true);
    assert.equal(count(alice.output(), /Initialization Sequence Completed/), 1, 'no reconnect');
  });

  it('revoking the device cuts both families and refuses it at connect', async () => {
    await lab.cli('cert', 'revoke', 'alice', '--reason', 'keyCompromise');
    await alice.waitFor(PUSHED_HALT, 20_000);
    await alice.stop(5000);
    assert.equal(await reach(POD4), false);
    assert.equal(await reach(POD6), false);
    await lab.refused('alice', new RegExp(`${REVOKED.source}|client-config-dir|ccd-exclusive`, 'i'));
  });

  it('SIGTERM of server run removes the NAT66 rule with the IPv4 one', async () => {
    await lab.server!.stop(8000);
    const nat6 = (await lab.topo.run('node', ['ip6tables', '-w', '-t', 'nat', '-S', 'POSTROUTING'])).stdout;
    const nat4 = (await lab.topo.iptables('node', ['-t', 'nat', '-S', 'POSTROUTING'])).stdout;
    assert.doesNotMatch(nat6, /MASQUERADE/);
    assert.doesNotMatch(nat4, /MASQUERADE/);
  });
});
