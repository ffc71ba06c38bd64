/**
 * The office gateway end to end, in network namespaces:
 *
 *   lan 192.168.77.10 ── 192.168.77.1 gw 172.18.12.100 ── 172.18.12.21 node ── 10.244.1.1 | pod 10.244.1.5
 *   (no VPN client;        (sshd; podgate provisions it)    (`podgate server run`,        (route to 10.244/16
 *    podgate CLI runs here)                                  NAT of 10.140/16)             via the node only)
 *
 * The lan host only has a static route for the cluster ranges via gw, as an office router would.
 * After `gateway provision` the lan host reaches the pod (TCP; there is no `ping` here) through gw's tunnel; a second provision changes
 * nothing; `gateway status` sees the tunnel, the pushed routes and a handshake; `gateway remove` takes the
 * route away (connect fails), deletes files and rules on gw and revokes the certificate.
 * gw's /etc/openvpn and /etc/sysctl.d are per-namespace bind mounts (/etc/netns/<ns>/, as `ip netns exec`
 * provides), so nothing is written to the machine's own /etc.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { exec } from '../../src/lib/exec.js';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gatewayLayout } from '../../src/gateway/layout.js';
import { OFFICE_NODE_POD as A, type SpawnedProcess, type Topology } from '../helpers/netns.js';
import { canRunSshd, makeKey, startSshd, type KeyPair } from '../helpers/sshd.js';
import { CLI } from '../helpers/cli.js';
import { requireNetns, until, VpnLab } from '../helpers/topology.js';

const LAN = { host: '192.168.77.10', gw: '192.168.77.1', cidr: '192.168.77.0/24' };
/** A second pod range behind the node, which the gateway's access rule does not allow. */
const POD2 = '10.244.2.5';
const POD_PORT = 8080;
const ECHO = `require('net').createServer((s) => s.end('pod-ok ' + s.remoteAddress + '\\n')).listen(${POD_PORT}, '0.0.0.0', () => console.log('listening'));`;
const PROBE = [
  "const s = require('net').connect({ host: process.argv[1], port: Number(process.argv[2]) });",
  "s.setTimeout(3000, () => { console.error('timeout'); process.exit(1); });",
  "s.on('error', (e) => { console.error(e.message); process.exit(1); });",
  "s.on('data', (d) => { process.stdout.write(d); process.exit(0); });",
].join('\n');

describe('e2e: gateway provision/status/remove across namespaces', function () {
  this.timeout(240_000);
  let lab: VpnLab;
  let topo: Topology;
  let dir: string;
  let config: string;
  let key: KeyPair;
  let server: SpawnedProcess;
  const etcNetns: string[] = [];
  const name = `office-${randomBytes(3).toString('hex')}`;
  const layout = gatewayLayout(name);

  const podgate = (role: string, args: string[]) =>
    topo.run(role, [process.execPath, CLI, '--config', config, ...args], {
      check: false,
      env: { ...process.env, PODGATE_LOG_LEVEL: 'warn' },
    });
  /** Runs the CLI on the lan host and parses its JSON; a failure shows the CLI's stderr. */
  const json = async (args: string[]): Promise<unknown> => {
    const r = await podgate('lan', args);
    assert.equal(r.code, 0, `podgate ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as unknown;
  };
  /** `podgate access apply`: the admins' rule from init plus one for this gateway. */
  const applyGatewayRule = async (cidrs: string[]) => {
    const file = join(lab.work, `rules-${Date.now()}.yaml`);
    writeFileSync(
      file,
      JSON.stringify({
        rules: [
          {
            name: 'admins-everything',
            subjects: [{ kind: 'group', name: 'admins' }],
            destinations: [{ kind: 'cidr', cidr: '0.0.0.0/0' }],
          },
          {
            name: 'office-gateway',
            subjects: [{ kind: 'gateway', name }],
            destinations: cidrs.map((cidr) => ({ kind: 'cidr', cidr })),
          },
        ],
      }),
    );
    await lab.cli('access', 'apply', '-f', file);
  };
  const provision = () =>
    podgate('lan', [
      'gateway',
      'provision',
      `root@${LAN.gw}`,
      '--identity',
      key.privateKeyFile,
      '--name',
      name,
      '--lan',
      LAN.cidr,
      '--accept-new-host-key',
      '--service',
      'daemon',
      '--wait',
      '60',
    ]);
  /**
   * Reachability from the lan host: a TCP connect to the pod's echo server (this machine has no `ping`).
   * Exit 0 and "pod-ok" when it answered; the script is constant, host and port arrive as argv.
   */
  const reach = (ip: string) =>
    topo.run('lan', [process.execPath, '-e', PROBE, ip, String(POD_PORT)], { check: false });

  before(async function () {
    await requireNetns(this, canRunSshd(), 'gateway e2e needs root, iproute2 and openssh-server');
    lab = await VpnLab.create({ prefix: 'pgg', services: true, vpn: ['  nat: true'] });
    topo = lab.topo;
    dir = lab.work;
    config = lab.cfgFile;
    await topo.link('lan', `${LAN.host}/24`, 'office', `${LAN.gw}/24`);
    await topo.route('lan', A.podCidr, LAN.gw);
    await topo.route('lan', A.serviceCidr, LAN.gw);
    const gwNs = topo.name('office');
    for (const sub of ['openvpn', 'sysctl.d']) mkdirSync(join('/etc/netns', gwNs, sub), { recursive: true });
    etcNetns.push(join('/etc/netns', gwNs));

    key = await makeKey(dir, 'admin-key');
    const sshd = await startSshd({ ns: gwNs, dir: join(dir, 'sshd') });
    sshd.authorize('root', key.publicKey);

    await lab.init(); // access.mode enforce (a new install): the gateway needs a rule
    await applyGatewayRule([A.podCidr, A.serviceCidr]);
    server = await lab.startServerRun();
    await topo.spawn('pod', [process.execPath, '-e', ECHO]).waitFor(/listening/);
    await lab.addPod('pod2', POD2);
    await topo.spawn('pod2', [process.execPath, '-e', ECHO]).waitFor(/listening/);
  });

  after(async () => {
    await lab?.close();
    for (const d of etcNetns) rmSync(d, { recursive: true, force: true });
    rmSync(`/run/podgate-gw/${name}`, { recursive: true, force: true });
    try {
      rmdirSync('/run/podgate-gw'); // only when empty: other gateways may live there
    } catch {
      /* not empty or already gone */
    }
  });

  it('before provisioning the lan host cannot reach the pod', async () => {
    assert.notEqual((await reach(A.pod)).code, 0);
  });

  it('provision runs every step; the lan host then reaches the pod (and a ClusterIP) through gw', async () => {
    const r = await provision();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^\[host\] Linux, root, OpenVPN 2\.6\.\d+, daemon \.\.\. unchanged$/m);
    for (const step of ['certificate', 'profile', 'forwarding', 'nat', 'service', 'tunnel', 'route'])
      assert.match(r.stdout, new RegExp(`^\\[${step}\\] .* \\.\\.\\. changed$`, 'm'));
    assert.match(
      r.stdout,
      new RegExp(
        `^\\[tunnel\\] ${layout.dev} up, 10\\.140\\.\\d+\\.\\d+/\\d+ \\.\\.\\. (changed|unchanged)$`,
        'm',
      ),
    );
    assert.match(
      r.stdout,
      new RegExp(
        `^\\[route\\] 10\\.244\\.0\\.1 via 10\\.140\\.\\d+\\.\\d+ dev ${layout.dev} .* \\.\\.\\. (changed|unchanged)$`,
        'm',
      ),
    );
    assert.equal(
      (await topo.run('office', ['stat', '-c', '%a %U', layout.profile])).stdout.trim(),
      '600 root',
    );
    assert.equal((await topo.run('office', ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), '1');
    const p = await reach(A.pod);
    assert.equal(p.code, 0, p.stdout + p.stderr);
    // the pod sees the node's pod-side address: lan -> gw (MASQUERADE into the tunnel) -> server (NAT to pods)
    assert.equal(p.stdout.trim(), `pod-ok ${A.nodePodSide}`);
    const svc = await reach(A.clusterIp);
    assert.equal(svc.code, 0, 'a ClusterIP answers too: ' + svc.stderr);
  });

  it('a second provision reports every step unchanged', async () => {
    const r = await provision();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const steps = r.stdout.split('\n').filter((l) => l.startsWith('['));
    if (!steps.every((l) => l.endsWith(' ... unchanged')))
      process.stderr.write(`second run:\n${r.stdout}\n${server.output().slice(-3000)}\n`);
    assert.equal(steps.length, 8, r.stdout);
    for (const l of steps) assert.match(l, / \.\.\. unchanged$/, r.stdout);
    assert.match(r.stdout, /nothing changed/);
  });

  it('status shows the tunnel, the pushed routes and a handshake; list shows the gateway', async () => {
    const r = await podgate('lan', ['--json', 'gateway', 'status', name]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      service: { running: boolean; pid: number };
      tunnel: { up: boolean; dev: string };
      routes: string[];
      lastHandshake: string | null;
      recordStatus: string;
    };
    assert.equal(s.recordStatus, 'ready');
    assert.equal(s.service.running, true);
    assert.equal(s.tunnel.up, true);
    assert.ok(
      s.routes.some((l) => l.startsWith(A.podCidr)),
      s.routes.join('\n'),
    );
    assert.ok(
      s.routes.some((l) => l.startsWith(A.serviceCidr)),
      s.routes.join('\n'),
    );
    assert.match(s.lastHandshake ?? '', /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    const listed = await podgate('lan', ['--json', 'gateway', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    const list = JSON.parse(listed.stdout) as { name: string; status: string; lans: string[] }[];
    assert.deepEqual(
      list.map((g) => [g.name, g.status, g.lans]),
      [[name, 'ready', [LAN.cidr]]],
    );
  });

  it('access rules: a gateway allowed only the first pod range: the LAN host reaches it, not the other', async () => {
    const other = await reach(POD2);
    assert.equal(other.code, 0, 'with the whole pod range allowed the second pod answers: ' + other.stderr);
    // Narrow the gateway's rule to the first pod range (the manager publishes the bundle; the server
    // applies it to the live tunnel).
    await applyGatewayRule(['10.244.1.0/24']);
    await until(async () => (await reach(POD2)).code !== 0, 20_000, 'the second pod range dropped');
    const allowed = await reach(A.pod);
    assert.equal(allowed.code, 0, 'the allowed range still answers: ' + allowed.stderr);
    const denied = await reach(POD2);
    assert.notEqual(denied.code, 0, 'the second pod range is not allowed: ' + denied.stdout);
  });

  it('remove stops the tunnel (the lan host loses the pod), cleans gw and revokes the certificate', async () => {
    const r = await podgate('lan', ['gateway', 'remove', name]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^\[service\] openvpn \(pid \d+\) stopped \.\.\. changed$/m);
    assert.match(r.stdout, /^\[nat\] 3 rule\(s\) deleted \.\.\. changed$/m);
    assert.match(
      r.stdout,
      new RegExp(`^\\[certificate\\] ${layout.commonName} serial [0-9A-F]+ revoked \\.\\.\\. changed$`, 'm'),
    );
    const after = await reach(A.pod);
    assert.notEqual(after.code, 0, 'pod unreachable after remove: ' + after.stdout);
    assert.notEqual(
      (await topo.run('office', ['ip', 'link', 'show', layout.dev], { check: false })).code,
      0,
      'tun device gone',
    );
    assert.doesNotMatch(
      (await topo.iptables('office', ['-S'])).stdout +
        (await topo.iptables('office', ['-t', 'nat', '-S'])).stdout,
      new RegExp(layout.ruleComment),
    );
    for (const f of [layout.profile, layout.sysctlFile, layout.runDir]) {
      assert.notEqual(
        (await topo.run('office', ['test', '-e', f], { check: false })).code,
        0,
        `${f} removed`,
      );
    }
    const certs = (await json(['--json', 'cert', 'list'])) as {
      commonName: string;
      status: string;
      revocationReason: string;
    }[];
    const gw = certs.filter((c) => c.commonName === layout.commonName);
    assert.equal(gw.length, 1);
    assert.equal(gw[0]!.status, 'revoked');
    assert.equal(gw[0]!.revocationReason, 'cessationOfOperation');
    // the published CRL (checked by openssl) lists the gateway's serial
    const crl = await podgate('lan', ['crl']);
    const text = (await exec(['openssl', 'crl', '-noout', '-text'], { input: crl.stdout })).stdout;
    const serial = (r.stdout.match(/serial ([0-9A-F]+) revoked/) ?? [])[1]!;
    assert.match(
      text,
      new RegExp(
        `Serial Number: ${serial}\\s+Revocation Date: .*\\s+CRL entry extensions:\\s+X509v3 CRL Reason Code:\\s+Cessation Of Operation`,
      ),
    );
    assert.deepEqual(await json(['--json', 'gateway', 'list']), []);
  });
});
