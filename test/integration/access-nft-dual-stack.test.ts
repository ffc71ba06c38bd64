/**
 * The dual-stack access scripts against the real `nft` (nftables 1.0.6) in a scratch network namespace:
 * `nft --check` accepts the full table with IPv6 sets, a delta that moves an IPv6 pod address, and one
 * that drops a rule's six sets; applied, the kernel holds each family's elements in its own set, and
 * the AccessAgent (with the ccd keeper) installs IPv6 client addresses derived from the IPv4 ones. Root only.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessCompiler } from '../../src/access/compile.js';
import { ruleSetId } from '../../src/access/elements.js';
import { renderDelta, renderTable } from '../../src/access/nft-script.js';
import type { ClusterEvent, ClusterObjectSource, ResolvedRule } from '../../src/access/types.js';
import { exec } from '../../src/lib/exec.js';
import { TunnelSubnets } from '../../src/lib/tunnel-subnets.js';
import { AccessAgent } from '../../src/openvpn/access-agent.js';
import { ClientConfigDir } from '../../src/openvpn/client-config-dir.js';
import { NftEnforcer } from '../../src/openvpn/nft-enforcer.js';
import { canUseNetns, createNamespace, destroyNamespace } from '../helpers/netns.js';
import { dualStackWorld } from '../helpers/dual-stack-world.js';

const rule = (name: string, more: Partial<ResolvedRule> = {}): ResolvedRule => ({
  name,
  clients: ['10.140.0.2', 'fd00:140::2'],
  destinations: [{ kind: 'namespace', names: ['team-a'] }],
  protocol: 'any',
  ports: [],
  ...more,
});

/** Hands the dual-stack world to the agent as one full list. */
class WorldSource implements ClusterObjectSource {
  start(onEvent: (e: ClusterEvent) => void): void {
    for (const e of [
      { type: 'resync-start' } as ClusterEvent,
      ...dualStackWorld(),
      { type: 'resync-done' } as ClusterEvent,
    ])
      onEvent(e);
  }
  async stop(): Promise<void> {}
}

describe('integration: dual-stack access scripts + real nft (scratch namespace)', function () {
  this.timeout(60_000);
  let netns: string | undefined;
  let dir: string | undefined;
  const nft = async (args: string[], input?: string) =>
    (await exec(['ip', 'netns', 'exec', netns!, 'nft', ...args], input === undefined ? {} : { input }))
      .stdout;
  const elements = async (set: string) => {
    const out = await nft(['-j', 'list', 'set', 'inet', 'podgate', set]);
    const j = JSON.parse(out) as { nftables: { set?: { elem?: unknown[] } }[] };
    return JSON.stringify(j.nftables.find((x) => x.set)?.set?.elem ?? []);
  };

  before(async function () {
    if (!(await canUseNetns())) {
      if (process.env.CI === 'true') throw new Error('network namespaces need root + iproute2');
      return this.skip();
    }
    netns = await createNamespace('pgnf6');
    dir = mkdtempSync(join(tmpdir(), 'podgate-access6-'));
  });
  after(async () => {
    if (netns) await destroyNamespace(netns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('nft --check accepts the table, an IPv6 delta and a rule drop; each family lands in its own set', async () => {
    const c = new AccessCompiler();
    c.setRules([
      rule('all'),
      rule('ping', { protocol: 'icmp' }),
      rule('web', { protocol: 'tcp', ports: [{ from: 80, to: 443 }] }),
    ]);
    for (const e of dualStackWorld()) c.apply(e);
    const table = renderTable({
      mode: 'enforce',
      tun: 'tun*',
      dns: ['10.96.0.10', 'fd00:10:96::a'],
      rules: c.snapshot(),
    });
    await nft(['--check', '-f', '-'], table);
    await nft(['-f', '-'], table);
    const id = ruleSetId('all');
    assert.match(await elements(`${id}_a6`), /fd00:10:244:1::5/);
    assert.doesNotMatch(await elements(`${id}_a`), /fd00/);
    assert.match(await elements(`${id}_c6`), /fd00:140::2/);
    assert.match(await elements(`${ruleSetId('web')}_p6`), /fd00:10:96::20/);
    assert.match(await elements(`${ruleSetId('ping')}_p6`), /ipv6-icmp/);
    assert.match(await elements('dns6'), /fd00:10:96::a/);

    const moved = c.apply({
      type: 'upsert',
      kind: 'pod',
      object: {
        uid: 'a1',
        namespace: 'team-a',
        name: 'a1',
        labels: { app: 'web' },
        ips: ['10.244.1.5', 'fd00:10:244:1::9'],
      },
    });
    const delta = renderDelta(moved, c.ruleIds());
    assert.match(delta, /_a6 \{ fd00:10:244:1::9 \}/);
    await nft(['--check', '-f', '-'], delta);
    await nft(['-f', '-'], delta);
    assert.match(await elements(`${id}_a6`), /fd00:10:244:1::9/);
    assert.doesNotMatch(await elements(`${id}_a6`), /fd00:10:244:1::5"/);

    const dropped = renderDelta(c.setRules([rule('all')]), c.ruleIds());
    await nft(['--check', '-f', '-'], dropped);
    await nft(['-f', '-'], dropped);
    const list = await nft(['list', 'table', 'inet', 'podgate']);
    assert.doesNotMatch(list, new RegExp(ruleSetId('ping')), "the dropped rule's six sets are gone");
    assert.match(list, new RegExp(`ip6 saddr @${id}_c6 ip6 daddr @${id}_a6 accept`));
  });

  it('the agent derives IPv6 client addresses: ccd gets ifconfig-ipv6-push, the rule its _c6 element', async () => {
    const subnets = new TunnelSubnets('10.140.0.0/16', 'fd00:140::/64');
    const agent = new AccessAgent({
      enforcer: new NftEnforcer({ prefix: ['ip', 'netns', 'exec', netns!] }),
      ccd: new ClientConfigDir(join(dir!, 'ccd'), subnets.netmask, (a) => subnets.address6(a)),
      clientsWithIpv6: (a) => subnets.withIpv6(a),
      cluster: new WorldSource(),
      dnsServers: ['10.96.0.10', 'fd00:10:96::a'],
      modeWithoutBundle: 'enforce',
      batchMs: 5,
    });
    await agent.start();
    try {
      const r = await agent.applyBundle({
        version: 1,
        mode: 'enforce',
        generatedAt: new Date().toISOString(),
        clients: [{ commonName: 'alice', address: '10.140.0.10' }],
        rules: [rule('alice', { clients: ['10.140.0.10'] })],
      });
      assert.equal(r.applied, true);
      await agent.settled();
      assert.deepEqual(
        readFileSync(join(dir!, 'ccd', 'alice'), 'utf8')
          .split('\n')
          .filter((l) => l && !l.startsWith('#')),
        ['ifconfig-push 10.140.0.10 255.255.0.0', 'ifconfig-ipv6-push fd00:140::a/64'],
      );
      const id = ruleSetId('alice');
      assert.match(await elements(`${id}_c`), /10\.140\.0\.10/);
      assert.match(await elements(`${id}_c6`), /fd00:140::a/);
      assert.match(await elements(`${id}_a6`), /fd00:10:244:1::5/);
    } finally {
      await agent.stop();
    }
  });
});
