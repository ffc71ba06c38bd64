/**
 * The openvpn container's start script (manifests-deployment.ts), run for real with /bin/sh inside a
 * network namespace made by the test: it turns on IPv4 forwarding, adds the MASQUERADE rule once (a
 * container restart does not duplicate it), waits for the CRL file the agent verified (never copies the Secret's), and execs openvpn
 * with the rendered server.conf, which reaches "Initialization Sequence Completed".
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
});
