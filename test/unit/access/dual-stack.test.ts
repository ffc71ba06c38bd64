/**
 * Access rules on a dual-stack cluster: IPv6 pod addresses, ClusterIPs, CIDRs and client addresses
 * land in each rule's IPv6 sets (`<id>_c6`, `_p6`, `_a6`, type ipv6_addr) beside the IPv4 ones, and
 * the rendered script matches both families. The real `nft` checks these scripts in
 * test/integration/access-nft-dual-stack.test.ts.
 */
import assert from 'node:assert/strict';
import { AccessCompiler } from '../../../src/access/compile.js';
import { isIpv6, ruleSetId } from '../../../src/access/elements.js';
import { renderDelta, renderTable } from '../../../src/access/nft-script.js';
import type { ClusterEvent, Destination, ResolvedRule } from '../../../src/access/types.js';
import { dualStackWorld } from '../../helpers/dual-stack-world.js';

const up = (kind: 'namespace' | 'pod' | 'service', object: unknown): ClusterEvent =>
  ({ type: 'upsert', kind, object }) as ClusterEvent;
const rule = (name: string, destinations: Destination[], more: Partial<ResolvedRule> = {}): ResolvedRule => ({
  name,
  clients: ['10.140.0.2', 'fd00:140::2'],
  destinations,
  protocol: 'any',
  ports: [],
  ...more,
});

function compiled(rules: ResolvedRule[]): AccessCompiler {
  const c = new AccessCompiler();
  c.setRules(rules);
  for (const e of dualStackWorld()) c.apply(e);
  return c;
}

describe('access: dual stack (compiler + nft script)', () => {
  it('a namespace rule reaches the pod and the Service on both families, for both client addresses', () => {
    const c = compiled([rule('r', [{ kind: 'namespace', names: ['team-a'] }])]);
    const r = c.snapshot()[0]!;
    assert.deepEqual(r.clients, ['10.140.0.2', 'fd00:140::2']);
    assert.deepEqual(r.any, ['10.244.1.5', 'fd00:10:244:1::5']);
    assert.deepEqual(
      r.ports.map((p) => `${p.addr} ${p.proto} ${p.from}`),
      ['10.96.0.20 tcp 80', 'fd00:10:96::20 tcp 80'],
    );
    const id = ruleSetId('r');
    const text = renderTable({
      mode: 'enforce',
      tun: 'tun*',
      dns: ['10.96.0.10', 'fd00:10:96::a'],
      rules: c.snapshot(),
    });
    for (const want of [
      `set ${id}_c6 { type ipv6_addr; }`,
      `set ${id}_p6 { type ipv6_addr . inet_proto . inet_service; flags interval; }`,
      `set ${id}_a6 { type ipv6_addr; flags interval; }`,
      `ip6 saddr @${id}_c6 ip6 daddr . meta l4proto . th dport @${id}_p6 accept`,
      `ip6 saddr @${id}_c6 ip6 daddr @${id}_a6 accept`,
      'ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 53 accept',
      'add element inet podgate dns { 10.96.0.10 }',
      'add element inet podgate dns6 { fd00:10:96::a }',
      `add element inet podgate ${id}_c { 10.140.0.2 }`,
      `add element inet podgate ${id}_c6 { fd00:140::2 }`,
      `add element inet podgate ${id}_a { 10.244.1.5 }`,
      `add element inet podgate ${id}_a6 { fd00:10:244:1::5 }`,
      `add element inet podgate ${id}_p { 10.96.0.20 . tcp . 80 }`,
      `add element inet podgate ${id}_p6 { fd00:10:96::20 . tcp . 80 }`,
    ])
      assert.ok(text.includes(want), `missing: ${want}\n${text}`);
    assert.doesNotMatch(text, /ip daddr @dns6|ip6 daddr @dns |_c \{ [^}]*:/, 'no family crosses over');
  });

  it('an IPv4 CIDR rule allows nothing of IPv6 (and the reverse)', () => {
    const c = compiled([
      rule('v4', [{ kind: 'cidr', cidr: '10.244.1.5/32' }]),
      rule('v6', [{ kind: 'cidr', cidr: 'fd00:10:244:1::/64' }]),
    ]);
    const [v4, v6] = c.snapshot();
    assert.deepEqual(v4!.any, ['10.244.1.5']);
    assert.deepEqual(v6!.any, ['fd00:10:244:1::/64']);
    const text = renderTable({ mode: 'enforce', tun: 'tun*', dns: [], rules: c.snapshot() });
    assert.ok(!text.includes(`${ruleSetId('v4')}_a6 {  }`));
    assert.doesNotMatch(text, new RegExp(`add element inet podgate ${ruleSetId('v4')}_a6`));
    assert.doesNotMatch(text, new RegExp(`add element inet podgate ${ruleSetId('v6')}_a `));
  });

  it('a /128 CIDR is one address; a pod inside an IPv6 CIDR of the same rule adds nothing', () => {
    const c = compiled([
      rule('r', [
        { kind: 'cidr', cidr: 'fd00:10:244::/48' },
        { kind: 'cidr', cidr: 'fd00:99::1/128' },
        { kind: 'namespace', names: ['team-a'] },
      ]),
    ]);
    const r = c.snapshot()[0]!;
    assert.deepEqual(r.any, ['10.244.1.5', 'fd00:10:244::/48', 'fd00:99::1']);
  });

  it('icmp means ICMPv6 for IPv6 destinations (ipv6-icmp), ports rules carry both families', () => {
    const c = compiled([
      rule('ping', [{ kind: 'namespace', names: ['team-a'] }], { protocol: 'icmp' }),
      rule('tcp', [{ kind: 'namespace', names: ['team-a'] }], {
        protocol: 'tcp',
        ports: [{ from: 80, to: 80 }],
      }),
    ]);
    const text = renderTable({ mode: 'enforce', tun: 'tun*', dns: [], rules: c.snapshot() });
    assert.ok(
      text.includes(`add element inet podgate ${ruleSetId('ping')}_p { 10.244.1.5 . icmp . 0-65535 }`),
    );
    assert.ok(
      text.includes(
        `add element inet podgate ${ruleSetId('ping')}_p6 { fd00:10:244:1::5 . ipv6-icmp . 0-65535 }`,
      ),
    );
    assert.match(text, new RegExp(`${ruleSetId('tcp')}_p6 \\{ [^}]*fd00:10:244:1::5 \\. tcp \\. 80`));
  });

  it('deltas: an IPv6 pod address leaves the _a6 set; a removed rule drops all six sets', () => {
    const c = compiled([rule('r', [{ kind: 'namespace', names: ['team-a'] }])]);
    const id = ruleSetId('r');
    const moved = c.apply(
      up('pod', {
        uid: 'a1',
        namespace: 'team-a',
        name: 'a1',
        labels: { app: 'web' },
        ips: ['10.244.1.5', 'fd00:10:244:1::9'],
      }),
    );
    const script = renderDelta(moved, c.ruleIds());
    assert.equal(
      script,
      [
        `delete element inet podgate ${id}_a6 { fd00:10:244:1::5 }`,
        `add element inet podgate ${id}_a6 { fd00:10:244:1::9 }`,
        '',
      ].join('\n'),
    );
    const gone = renderDelta(c.setRules([]), []);
    for (const k of ['c', 'p', 'a', 'c6', 'p6', 'a6'])
      assert.ok(gone.includes(`delete set inet podgate ${id}_${k}\n`), `drops ${id}_${k}`);
  });

  it('clients that are not addresses are dropped; IPv4-only bundles give empty IPv6 sets', () => {
    const c = compiled([
      rule('r', [{ kind: 'namespace', names: ['team-a'] }], {
        clients: ['10.140.0.2', 'fd00::x', 'fe80::1%tun0'],
      }),
    ]);
    assert.deepEqual(c.snapshot()[0]!.clients, ['10.140.0.2']);
  });

  it('isIpv6 (no parser, runs per pod address): hex groups with at most one "::"', () => {
    for (const ok of ['fd00::1', '1:2:3:4:5:6:7:8', '::', 'FD00:10:244:1::5', '1::8'])
      assert.equal(isIpv6(ok), true, ok);
    for (const bad of [
      '1:2:3:4:5:6:7',
      '1::2::3',
      ':::',
      'fd00::g',
      '::ffff:10.0.0.1',
      'fe80::1%tun0',
      '10.0.0.1',
      'fd00::/64',
      '1:2:3:4:5:6:7:8:9',
      '12345::1',
    ])
      assert.equal(isIpv6(bad), false, bad);
  });
});
