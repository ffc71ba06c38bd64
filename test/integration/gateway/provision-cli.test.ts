/**
 * `podgate gateway provision` against a real sshd on loopback. Both sshd and the CLI run inside a throw-away
 * network namespace (its own loopback, iptables and ip_forward), so even a regression that went past the
 * point where these tests stop could not touch the machine's network. --dry-run prints the whole plan and changes nothing (remote files, iptables, sysctl,
 * known_hosts, certificates, gateway records); a failing step stops the run and reports the step, the
 * exact command and its stderr; a user without root or sudo is refused before any change.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gatewayLayout } from '../../../src/gateway/layout.js';
import {
  canRunSshd,
  createUnprivilegedUser,
  makeKey,
  startSshd,
  type KeyPair,
  type Sshd,
} from '../../helpers/sshd.js';
import { canUseNetns, createNamespace, destroyNamespace, runIn } from '../../helpers/netns.js';

const CLI = join(process.cwd(), 'dist/bundle/podgate.js');

describe('integration: gateway provision CLI (loopback sshd)', function () {
  this.timeout(120_000);
  let dir: string;
  let sshd: Sshd;
  let key: KeyPair;
  let config: string;
  let dataDir: string;
  let ns: string;

  const podgate = (args: string[]) =>
    runIn(ns, ['node', CLI, '--config', config, ...args], {
      check: false,
      env: { ...process.env, PODGATE_LOG_LEVEL: 'warn' },
    });
  const machineState = async () => ({
    iptables: (await runIn(ns, ['iptables-save'], { check: false })).stdout
      .replace(/^#.*\n/gm, '')
      .replace(/\[\d+:\d+\]/g, ''),
    forward: (await runIn(ns, ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout,
    links: (await runIn(ns, ['ip', '-o', 'link'])).stdout,
  });

  before(async function () {
    if (!canRunSshd() || !(await canUseNetns())) {
      if (process.env.CI === 'true') throw new Error('these tests need root, openssh-server and iproute2');
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'pg-gw-cli-'));
    dataDir = join(dir, 'data');
    key = await makeKey(dir, 'admin-key');
    ns = await createNamespace('pggwcli');
    sshd = await startSshd({ ns, listenAddress: '127.0.0.1', port: 2222 });
    sshd.authorize('root', key.publicKey);
    config = join(dir, 'podgate.yaml');
    writeFileSync(
      config,
      [
        `dataDir: ${dataDir}`,
        'vpn:',
        '  endpoints: [127.0.0.1]',
        '  routes: { pods: [10.244.0.0/16], services: [10.96.0.0/12] }',
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'admin-pw'), 'correct horse battery staple\n');
    const init = await runIn(ns, ['node', CLI, '--config', config, 'init'], {
      env: { ...process.env, PODGATE_ADMIN_PASSWORD_FILE: join(dir, 'admin-pw') },
    });
    assert.match(init.stdout, /initialised/);
  });
  after(async () => {
    await sshd?.stop();
    if (ns) await destroyNamespace(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('--dry-run prints every step and changes nothing', async () => {
    const name = `dry-${randomBytes(3).toString('hex')}`;
    const layout = gatewayLayout(name);
    const before = await machineState();
    const r = await podgate([
      'gateway',
      'provision',
      `root@127.0.0.1:${sshd.port}`,
      '--identity',
      key.privateKeyFile,
      '--name',
      name,
      '--lan',
      '192.168.77.0/24',
      '--dry-run',
      '--accept-new-host-key',
      '--service',
      'daemon',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    for (const step of [
      'host',
      'certificate',
      'profile',
      'forwarding',
      'nat',
      'service',
      'tunnel',
      'route',
    ]) {
      assert.ok(
        lines.some((l) => new RegExp(`^\\[${step}\\] .* \\.\\.\\. (unchanged|would change)$`).test(l)),
        `${step} in plan:\n${r.stdout}`,
      );
    }
    assert.match(r.stdout, /^\[host\] Linux, root, OpenVPN 2\.\d+\.\d+, daemon \.\.\. unchanged$/m);
    assert.match(r.stdout, /^\[certificate\] gw-dry-\w+: issue \(none issued\) \.\.\. would change$/m);
    assert.match(
      r.stdout,
      /^\[nat\] 3 rule\(s\) for 192\.168\.77\.0\/24 out of pgw[0-9a-f]{8} \.\.\. would change$/m,
    );
    assert.match(
      r.stdout,
      /^\[route\] 10\.244\.0\.1 not routed via pgw[0-9a-f]{8} yet \.\.\. would change$/m,
    );
    assert.deepEqual(await machineState(), before, 'iptables and ip_forward untouched');
    for (const p of [layout.profile, layout.sysctlFile, layout.runDir, layout.unitFile])
      assert.ok(!existsSync(p), `${p} not created`);
    assert.ok(!existsSync(join(dataDir, 'known_hosts')), 'dry run records no host key');
    const certs = JSON.parse((await podgate(['--json', 'cert', 'list'])).stdout) as { commonName: string }[];
    assert.ok(!certs.some((c) => c.commonName === layout.commonName), 'no certificate issued');
    assert.deepEqual(JSON.parse((await podgate(['--json', 'gateway', 'list'])).stdout), []);
  });

  it('a failing step stops the run and reports the step, the command and its stderr', async () => {
    const name = `fail-${randomBytes(3).toString('hex')}`;
    const layout = gatewayLayout(name);
    // a directory where the profile must go: `install` cannot replace it (a real failure, no host change)
    const createdConfDir = !existsSync(layout.confDir);
    mkdirSync(layout.profile, { recursive: true });
    const before = await machineState();
    try {
      const r = await podgate([
        'gateway',
        'provision',
        `root@127.0.0.1:${sshd.port}`,
        '--identity',
        key.privateKeyFile,
        '--name',
        name,
        '--lan',
        '192.168.77.0/24',
        '--accept-new-host-key',
        '--service',
        'daemon',
      ]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^\[host\] .* \.\.\. unchanged$/m);
      assert.match(
        r.stdout,
        /^\[certificate\] gw-fail-\w+ serial [0-9A-F]+ issued \(none issued\) \.\.\. changed$/m,
      );
      assert.match(r.stdout, /^\[profile\] \.\.\. failed$/m);
      assert.doesNotMatch(r.stdout, /\[forwarding\]/, 'stops at the first failure');
      const m =
        /gateway step "profile" failed: `install -D -T -m 600 -o root -g root -- (\/tmp\/podgate\.\w+) (\S+)` exited 1: install: cannot overwrite directory/.exec(
          r.stderr,
        );
      assert.ok(m, r.stderr);
      assert.equal(m[2], layout.profile);
      assert.ok(!existsSync(m[1]!), 'the uploaded temp file was removed');
      assert.deepEqual(await machineState(), before);
      const [gw] = JSON.parse((await podgate(['--json', 'gateway', 'list'])).stdout) as {
        name: string;
        status: string;
        certSerial: string;
      }[];
      assert.equal(gw?.name, name);
      assert.equal(gw.status, 'error');
      assert.match(gw.certSerial, /^[0-9A-F]+$/);
      assert.ok(existsSync(join(dataDir, 'known_hosts')), 'accepted host key recorded');
    } finally {
      rmSync(layout.profile, { recursive: true, force: true });
      if (createdConfDir) rmdirSync(layout.confDir);
    }
  });

  it('a user without root or sudo is refused (exit 2) and nothing is recorded', async () => {
    const user = await createUnprivilegedUser();
    try {
      sshd.authorize(user.name, key.publicKey);
      const name = `nosudo-${randomBytes(3).toString('hex')}`;
      const r = await podgate([
        'gateway',
        'provision',
        `${user.name}@127.0.0.1:${sshd.port}`,
        '--identity',
        key.privateKeyFile,
        '--name',
        name,
        '--lan',
        '192.168.77.0/24',
      ]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `gateway step "host" failed: .*user ${user.name} is not root and has no passwordless sudo`,
        ),
      );
      const list = JSON.parse((await podgate(['--json', 'gateway', 'list'])).stdout) as { name: string }[];
      assert.ok(!list.some((g) => g.name === name));
    } finally {
      await user.remove();
    }
  });

  it('bad input is refused before connecting (exit 2, field named)', async () => {
    const cases: [string[], RegExp][] = [
      [['root@127.0.0.1;reboot'], /target: .* invalid host name/],
      [[`root@127.0.0.1:${sshd.port}`, '--name', 'Bad Name'], /name must match/],
      [[`root@127.0.0.1:${sshd.port}`, '--name', 'x', '--lan', '192.168.77.1/24'], /lan: .* host bits set/],
      [
        [`root@127.0.0.1:${sshd.port}`, '--name', 'x', '--lan', '10.244.0.0/24'],
        /lan: lan 10\.244\.0\.0\/24 overlaps cluster range 10\.244\.0\.0\/16/,
      ],
    ];
    for (const [args, why] of cases) {
      const r = await podgate([
        'gateway',
        'provision',
        ...args,
        '--identity',
        key.privateKeyFile,
        '--dry-run',
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
    }
  });
});
