/**
 * The openvpn container's start script (manifests-deployment.ts), run for real with /bin/sh inside a
 * network namespace made by the test: it turns on IPv4 forwarding, adds the MASQUERADE rule once (a
 * container restart does not duplicate it), waits for the CRL file the agent verified (never copies the Secret's), and execs openvpn
 * with the rendered server.conf, which reaches "Initialization Sequence Completed". In `enforce` it
 * installs the DNS-only nftables table before openvpn starts, keeps a table that is already there (the
 * agent's, after a container restart), and exits without starting openvpn when nft refuses the table.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openvpnStartScript } from '../../../src/cluster/manifests-deployment.js';
import { canUseNetns, cleanupAll, createNamespace, iptablesIn, runIn, spawnIn } from '../../helpers/netns.js';
import { makeServerDir, makeTestPki, testVpnConfig, writeServerFiles } from '../../helpers/openvpn.js';

describe('openvpn container start script (real sh, iptables, openvpn in a netns)', function () {
  this.timeout(60_000);
  let dir: string | undefined;

  before(async function () {
    if (!(await canUseNetns())) {
      if (process.env.CI === 'true') throw new Error('network namespaces need root + iproute2');
      this.skip();
    }
  });
  after(async () => {
    await cleanupAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("forwarding on, one MASQUERADE rule across restarts, waits for the agent's CRL, openvpn up", async () => {
    const ns = await createNamespace('pgss');
    dir = makeServerDir('pg-start-');
    const files = writeServerFiles(dir, await makeTestPki(), testVpnConfig({ port: 30030 }));
    const seed = join(dir, 'crl-seed.pem');
    copyFileSync(files.crlPath, seed);
    unlinkSync(files.crlPath); // an empty emptyDir, as on the pod's first start
    const script = openvpnStartScript('10.140.0.0/16', {
      crl: files.crlPath,
      crlSeed: seed,
      serverConf: files.configPath,
    });
    await runIn(ns, ['sh', '-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward']);

    const first = spawnIn(ns, ['/bin/sh', '-c', script], { cwd: dir });
    // The Secret's copy is never used unverified: openvpn waits for the agent's CRL file.
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(!existsSync(files.crlPath), 'the unverified seed was not copied');
    copyFileSync(seed, files.crlPath); // what the agent writes once it verified the CRL
    await first.waitFor(/Initialization Sequence Completed/, 30_000);
    assert.equal((await runIn(ns, ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), '1');
    first.kill('SIGTERM');
    await first.exited;

    // A container restart: the rule is not added twice and an existing CRL (the agent's) is kept.
    const newer = '# written by the agent\n' + readFileSync(seed, 'utf8');
    writeFileSync(files.crlPath, newer);
    const second = spawnIn(ns, ['/bin/sh', '-c', script], { cwd: dir });
    await second.waitFor(/Initialization Sequence Completed/, 30_000);
    const rules = (await iptablesIn(ns, ['-t', 'nat', '-S', 'POSTROUTING'])).stdout;
    assert.equal((rules.match(/-A POSTROUTING -s 10\.140\.0\.0\/16 -j MASQUERADE/g) ?? []).length, 1, rules);
    assert.equal(readFileSync(files.crlPath, 'utf8'), newer);
    second.kill('SIGTERM');
    await second.exited;
  });

  it('enforce: the DNS-only table before openvpn; an existing table kept across a restart; no table, no openvpn', async () => {
    const ns = await createNamespace('pgse');
    const d = makeServerDir('pg-start-enforce-');
    try {
      const files = writeServerFiles(d, await makeTestPki(), testVpnConfig({ port: 30031 }));
      const paths = { crl: files.crlPath, crlSeed: files.crlPath, serverConf: files.configPath };
      const script = openvpnStartScript('10.140.0.0/16', paths, {
        mode: 'enforce',
        dnsServers: ['10.96.0.10'],
      });
      const nftList = async () => (await runIn(ns, ['nft', 'list', 'table', 'inet', 'podgate'])).stdout;

      const first = spawnIn(ns, ['/bin/sh', '-c', script], { cwd: d });
      await first.waitFor(/Initialization Sequence Completed/, 30_000);
      const table = await nftList();
      assert.match(table, /hook forward priority filter; policy accept;/, table);
      assert.match(table, /elements = \{ 10\.96\.0\.10 \}/, table);
      assert.match(table, /ip daddr @dns meta l4proto \{ tcp, udp \} th dport 53 accept/, table);
      assert.match(table, /counter name "dropped" drop/, table);
      assert.doesNotMatch(table, /jump rules\n\s*accept/, 'nothing but DNS is accepted from the tunnel');
      assert.match(first.output(), /DNS only until the agent applies the rules/);
      first.kill('SIGTERM');
      await first.exited;

      // the agent's table (here: one more rule) survives a container restart untouched
      await runIn(ns, [
        'nft',
        'add',
        'rule',
        'inet',
        'podgate',
        'forward',
        'ip',
        'daddr',
        '10.244.1.5',
        'accept',
      ]);
      const agents = await nftList();
      const second = spawnIn(ns, ['/bin/sh', '-c', script], { cwd: d });
      await second.waitFor(/Initialization Sequence Completed/, 30_000);
      assert.match(second.output(), /already in place; keeping it/);
      assert.equal(await nftList(), agents);
      second.kill('SIGTERM');
      await second.exited;

      // nft refuses the table (here: a DNS server it cannot parse): the container exits, openvpn never starts
      await runIn(ns, ['nft', 'delete', 'table', 'inet', 'podgate']);
      const broken = openvpnStartScript('10.140.0.0/16', paths, {
        mode: 'enforce',
        dnsServers: ['10.96.0.300'],
      });
      const third = spawnIn(ns, ['/bin/sh', '-c', broken], { cwd: d });
      const { code } = await third.exited;
      assert.notEqual(code, 0, third.output());
      assert.doesNotMatch(third.output(), /Initialization Sequence Completed|OpenVPN 2/);
      const none = await runIn(ns, ['nft', 'list', 'table', 'inet', 'podgate'], { check: false });
      assert.notEqual(none.code, 0, 'no table was left half-made');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
  it('dual stack: IPv6 forwarding on, one NAT66 rule across restarts, the DNS-only table for both families, openvpn with server-ipv6', async () => {
    const ns = await createNamespace('pgs6');
    const d = makeServerDir('pg-start-six-');
    try {
      const vpn = testVpnConfig({
        port: 30032,
        clientSubnet6: 'fd00:140::/64',
        routes: { pods: ['10.244.0.0/16', 'fd00:10:244::/56'] },
        dns: { servers: ['10.96.0.10', 'fd00:10:96::a'] },
      });
      const files = writeServerFiles(d, await makeTestPki(), vpn);
      const paths = { crl: files.crlPath, crlSeed: files.crlPath, serverConf: files.configPath };
      const script = openvpnStartScript(
        '10.140.0.0/16',
        paths,
        { mode: 'enforce', dnsServers: ['10.96.0.10', 'fd00:10:96::a'] },
        'fd00:140::/64',
      );
      await runIn(ns, ['sh', '-c', 'echo 0 > /proc/sys/net/ipv6/conf/all/forwarding']);
      for (let i = 0; i < 2; i++) {
        const p = spawnIn(ns, ['/bin/sh', '-c', script], { cwd: d });
        await p.waitFor(/Initialization Sequence Completed/, 30_000);
        p.kill('SIGTERM');
        await p.exited;
      }
      const fwd = await runIn(ns, ['cat', '/proc/sys/net/ipv6/conf/all/forwarding']);
      assert.equal(fwd.stdout.trim(), '1');
      const rules = (await runIn(ns, ['ip6tables', '-w', '-t', 'nat', '-S', 'POSTROUTING'])).stdout;
      assert.equal((rules.match(/-A POSTROUTING -s fd00:140::\/64 -j MASQUERADE/g) ?? []).length, 1, rules);
      const table = (await runIn(ns, ['nft', 'list', 'table', 'inet', 'podgate'])).stdout;
      assert.match(table, /set dns6 \{[^}]*elements = \{ fd00:10:96::a \}/s, table);
      assert.match(table, /ip6 daddr @dns6 meta l4proto \{ tcp, udp \} th dport 53 accept/, table);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
