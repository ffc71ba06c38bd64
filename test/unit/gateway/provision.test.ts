/**
 * Provisioning logic on a scripted host (test/unit/gateway/fake-host.ts): idempotence, dry run, the sudo
 * path, the systemd path, certificate re-use and renewal, failures, remove. The real thing (sshd, openvpn,
 * iptables, namespaces) is covered by test/integration/gateway and test/e2e/gateway-netns.test.ts; these
 * cover what cannot run here (sudo is not installed, systemd is not PID 1).
 */
import assert from 'node:assert/strict';
import { gatewayLayout } from '../../../src/gateway/layout.js';
import {
  firstAddress,
  provisionGateway,
  StepFailed,
  type ProvisionOptions,
} from '../../../src/gateway/provision.js';
import { removeGateway } from '../../../src/gateway/remove.js';
import { gatewayStatus, lastHandshake } from '../../../src/gateway/status.js';
import type { GatewayCertificates } from '../../../src/gateway/step.js';
import { parseCidr } from '../../../src/lib/cidr.js';
import type { CertRecord, GatewayRecord } from '../../../src/store/types.js';
import { FakeHost } from './fake-host.js';

const DAY = 86_400_000;
const NOW = new Date('2026-11-27T12:00:00Z');
const layout = gatewayLayout('office');

function world(days = 365) {
  const certs = new Map<string, CertRecord>();
  const calls: string[] = [];
  let n = 0;
  const c: GatewayCertificates = {
    findValid: async (cn) => [...certs.values()].find((x) => x.commonName === cn && x.status === 'valid'),
    async issue(cn) {
      const serial = `0${++n}`.padStart(4, '0');
      const certPem = `-----BEGIN CERTIFICATE-----\nMII${serial}\n-----END CERTIFICATE-----\n`;
      const cert = {
        serial,
        commonName: cn,
        certPem,
        notAfter: new Date(NOW.getTime() + days * DAY),
        status: 'valid',
      } as CertRecord;
      certs.set(serial, cert);
      calls.push(`issue ${cn}`);
      return { cert, profile: `client\ndev tun\n<cert>\n${certPem}</cert>\n<key>\nKEY${serial}\n</key>\n` };
    },
    async revoke(serial, reason) {
      certs.get(serial)!.status = 'revoked';
      calls.push(`revoke ${serial} ${reason}`);
    },
  };
  const records = new Map<string, GatewayRecord>();
  const gateways = {
    getGateway: async (name: string) => records.get(name),
    upsertGateway: async (g: GatewayRecord) => (records.set(g.name, g), g),
    deleteGateway: async (name: string) => void records.delete(name),
  };
  return { certs, calls, c, records, gateways };
}

const OPTS: ProvisionOptions = {
  name: 'office',
  target: { user: 'root', host: 'gw.office', port: 22 },
  lans: ['192.168.1.0/24'],
  clusterRanges: ['10.244.0.0/16', '10.96.0.0/12'],
  waitMs: 20,
};

async function run(
  host: FakeHost,
  w: ReturnType<typeof world>,
  over: Partial<ProvisionOptions> = {},
  now = NOW,
) {
  const out: string[] = [];
  const r = await provisionGateway(
    { ...OPTS, ...over },
    {
      connect: async () => host,
      certs: w.c,
      gateways: w.gateways,
      out: (l) => out.push(l),
      now: () => now,
      sleep: async () => {},
    },
  );
  return { ...r, out };
}

const MUTATING =
  /^(install |iptables -w -t \w+ -A|sysctl |\/usr\/sbin\/openvpn --daemon|systemctl (enable|start|restart|daemon-reload)|kill )/;

describe('unit: gateway provisioning on a scripted host', () => {
  it('first run changes, second run is all unchanged, with the certificate re-used', async () => {
    const host = new FakeHost({ devOf: layout.dev });
    const w = world();
    const first = await run(host, w);
    assert.deepEqual(
      first.steps.map((s) => `${s.label}:${s.result}`),
      [
        'host:unchanged',
        'certificate:changed',
        'profile:changed',
        'forwarding:changed',
        'nat:changed',
        'service:changed',
        'tunnel:changed',
        'route:changed',
      ],
    );
    assert.equal(host.files.get(layout.profile)?.mode, '600');
    assert.equal(host.rules.size, 3);
    const second = await run(host, w);
    assert.ok(
      second.steps.every((s) => s.result === 'unchanged'),
      second.out.join('\n'),
    );
    assert.deepEqual(w.calls, ['issue gw-office']);
    assert.equal(w.records.get('office')?.status, 'ready');
    assert.equal(w.records.get('office')?.certSerial, '0001');
  });

  it('--dry-run runs no changing command, issues nothing and records nothing', async () => {
    const host = new FakeHost({ devOf: layout.dev });
    const w = world();
    const r = await run(host, w, { dryRun: true });
    assert.ok(
      r.steps.slice(1).every((s) => s.result === 'would change'),
      r.out.join('\n'),
    );
    assert.deepEqual(
      host.plain().filter((c) => MUTATING.test(c)),
      [],
    );
    assert.deepEqual(w.calls, []);
    assert.equal(w.records.size, 0);
  });

  it('a sudo user: every privileged command goes through sudo -n with a fixed PATH; temp files do not', async () => {
    const host = new FakeHost({ user: 'ops', sudo: true, devOf: layout.dev });
    const w = world();
    const r = await run(host, w, { target: { user: 'ops', host: 'gw.office', port: 22 } });
    assert.match(r.out[1]!, /^\[host\] Linux, ops with sudo, OpenVPN 2\.6\.14, daemon \.\.\. unchanged$/);
    const priv = host.commands.filter((c) =>
      ['install', 'iptables', 'sysctl', '/usr/sbin/openvpn'].includes(c[c[0] === 'sudo' ? 5 : 2]!),
    );
    assert.ok(priv.length > 5);
    for (const c of priv)
      assert.deepEqual(c.slice(0, 5), [
        'sudo',
        '-n',
        '--',
        'env',
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ]);
    assert.ok(
      host.commands.some((c) => c[0] === 'mktemp'),
      'mktemp as the login user',
    );
    assert.ok(
      host.commands.some((c) => c[0] === 'rm' && c[3]?.startsWith('/tmp/podgate.')),
      'temp removed as the login user',
    );
  });

  it('a user without root or sudo is refused before any change, with no record', async () => {
    const host = new FakeHost({ user: 'ops', sudo: false });
    const w = world();
    await assert.rejects(
      run(host, w, { target: { user: 'ops', host: 'gw.office', port: 22 } }),
      (e: StepFailed) => {
        assert.equal(e.step, 'host');
        assert.equal(e.status, 403);
        assert.match(
          e.message,
          /not root and has no passwordless sudo \(`sudo -n true` exited 1: sudo: a password is required\)/,
        );
        return true;
      },
    );
    assert.deepEqual(host.plain(), ['id -u', 'sudo -n true']);
    assert.equal(w.records.size, 0);
  });

  it('systemd as PID 1: a unit that re-applies the NAT at start, enabled and started; then unchanged', async () => {
    const host = new FakeHost({ systemd: true, devOf: layout.dev });
    const w = world();
    const r = await run(host, w);
    assert.match(
      r.out.find((l) => l.startsWith('[service]'))!,
      /podgate-gw-office\.service started \.\.\. changed/,
    );
    const unit = host.files.get(layout.unitFile)!;
    assert.equal(unit.mode, '644');
    assert.match(
      unit.content,
      /^ExecStart=\/usr\/sbin\/openvpn --config \/etc\/openvpn\/podgate\/office\.conf --dev pgw[0-9a-f]{8} --dev-type tun /m,
    );
    assert.match(
      unit.content,
      /^ExecStartPre=\/usr\/sbin\/iptables -w -t nat -A POSTROUTING -s 192\.168\.1\.0\/24 -o pgw[0-9a-f]{8} -m comment --comment podgate-gw-office -j MASQUERADE$/m,
    );
    assert.match(unit.content, /^ExecStopPost=-\/usr\/sbin\/iptables -w -t nat -D POSTROUTING /m);
    assert.match(unit.content, /^RuntimeDirectory=podgate-gw\/office$/m);
    assert.ok(host.plain().includes('systemctl daemon-reload'));
    assert.ok(host.enabled && host.active);
    const again = await run(host, w);
    assert.ok(
      again.steps.every((s) => s.result === 'unchanged'),
      again.out.join('\n'),
    );
  });

  it('an expiring certificate is replaced (old one revoked as superseded) and the service restarted', async () => {
    const host = new FakeHost({ systemd: true, devOf: layout.dev });
    const w = world(40);
    await run(host, w);
    const later = new Date(NOW.getTime() + 15 * DAY);
    const r = await run(host, w, {}, later);
    assert.deepEqual(
      r.steps.filter((s) => s.result === 'changed').map((s) => s.label),
      ['certificate', 'profile', 'service', 'tunnel', 'route'],
    );
    assert.match(
      r.out.find((l) => l.startsWith('[certificate]'))!,
      /issued \(expiring\)/,
    );
    assert.deepEqual(w.calls, ['issue gw-office', 'revoke 0001 superseded', 'issue gw-office']);
    assert.ok(host.plain().includes('systemctl restart podgate-gw-office.service'));
  });

  it('a tunnel that never comes up fails the tunnel step with the openvpn log; the record says error', async () => {
    const host = new FakeHost({ tunnel: false, devOf: layout.dev });
    const w = world();
    await assert.rejects(run(host, w), (e: StepFailed) => {
      assert.equal(e.step, 'tunnel');
      assert.match(
        e.message,
        /gateway step "tunnel" failed: pgw[0-9a-f]{8} did not come up within 0\.02 s; openvpn log:\n.*Peer Connection/,
      );
      return true;
    });
    const rec = w.records.get('office')!;
    assert.equal(rec.status, 'error');
    assert.equal(rec.certSerial, '0001');
    assert.equal(rec.details.step, 'tunnel');
  });

  it('status reads the daemon, tunnel and handshake; remove undoes everything and revokes', async () => {
    const host = new FakeHost({ devOf: layout.dev });
    const w = world();
    await run(host, w);
    const s = await gatewayStatus('office', { connect: async () => host, gateways: w.gateways });
    assert.deepEqual(s.service, { manager: 'daemon', running: true, pid: 4242 });
    assert.equal(s.tunnel.up, true);
    assert.equal(s.lastHandshake, '2026-11-27 12:00:00');
    const out: string[] = [];
    await removeGateway('office', {
      connect: async () => host,
      certs: w.c,
      gateways: w.gateways,
      out: (l) => out.push(l),
      sleep: async () => {},
    });
    assert.equal(host.rules.size, 0);
    assert.ok(!host.files.has(layout.profile) && !host.files.has(layout.sysctlFile));
    assert.equal(host.pid, undefined);
    assert.deepEqual(w.calls.slice(-1), ['revoke 0001 cessationOfOperation']);
    assert.equal(w.records.size, 0);
    assert.match(out.join('\n'), /\[nat\] 3 rule\(s\) deleted \.\.\. changed/);
  });

  it('remove --local-only revokes and forgets without connecting', async () => {
    const host = new FakeHost({ devOf: layout.dev });
    const w = world();
    await run(host, w);
    const out: string[] = [];
    const never = async (): Promise<never> => assert.fail('connected');
    await removeGateway(
      'office',
      { connect: never, certs: w.c, gateways: w.gateways, out: (l) => out.push(l) },
      { localOnly: true },
    );
    assert.deepEqual(w.calls.slice(-1), ['revoke 0001 cessationOfOperation']);
    assert.equal(w.records.size, 0);
    assert.equal(host.rules.size, 3, 'host untouched');
    assert.match(out[0]!, /local only: the host is not touched/);
  });

  it('missing openvpn: refused without --install; with it, the package manager installs it', async () => {
    const w = world();
    const bare = new FakeHost({ devOf: layout.dev, missing: ['openvpn'] });
    await assert.rejects(
      run(bare, w),
      /gateway step "host" failed: openvpn not found on the host; install them or rerun with --install/,
    );
    assert.deepEqual(
      bare.plain().filter((c) => MUTATING.test(c)),
      [],
    );
    const dry = new FakeHost({ devOf: layout.dev, missing: ['openvpn'] });
    const plan = await run(dry, w, { install: true, dryRun: true });
    assert.equal(plan.steps[0]!.result, 'would change');
    assert.ok(!dry.plain().some((c) => c.includes('apt-get')));
    const host = new FakeHost({ devOf: layout.dev, missing: ['openvpn'] });
    const r = await run(host, w, { install: true });
    assert.match(r.out[1]!, /^\[host\] .*; apt-get installed openvpn \.\.\. changed$/);
    assert.deepEqual(
      host.plain().filter((c) => c.includes('apt-get ')),
      [
        'apt-get update -q',
        'env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openvpn',
      ],
    );
  });

  it('bad input is refused before connecting', async () => {
    const w = world();
    const never = async (): Promise<never> => assert.fail('connected');
    const cases: [Partial<ProvisionOptions>, RegExp][] = [
      [{ name: 'Office!' }, /name must match/],
      [{ name: 'x'.repeat(62) }, /name must match/],
      [{ lans: ['192.168.1.1/24'] }, /host bits set/],
      [{ lans: ['fd00::/64'] }, /only IPv4/],
      [{ lans: ['10.244.8.0/24'] }, /lan 10\.244\.8\.0\/24 overlaps cluster range 10\.244\.0\.0\/16/],
      [{ reservedRanges: { 'vpn.clientSubnet': '192.168.0.0/16' } }, /overlaps vpn\.clientSubnet/],
    ];
    for (const [over, why] of cases) {
      await assert.rejects(
        provisionGateway(
          { ...OPTS, ...over },
          { connect: never, certs: w.c, gateways: w.gateways, out: () => {} },
        ),
        why,
      );
    }
  });

  it('helpers: first address, handshake parsing, device names', () => {
    assert.equal(firstAddress(parseCidr('x', '10.244.0.0/16')), '10.244.0.1');
    assert.equal(firstAddress(parseCidr('x', '10.96.0.255/32')), '10.96.0.255');
    assert.equal(
      lastHandshake(
        '2026-01-01 00:00:00 x\n2026-01-02 03:04:05 Peer Connection Initiated with x\n2026-01-03 00:00:00 Peer Connection Initiated\n',
      ),
      '2026-01-03 00:00:00',
    );
    assert.equal(lastHandshake('nothing'), null);
    assert.match(gatewayLayout('a'.repeat(61)).dev, /^pgw[0-9a-f]{8}$/);
    assert.notEqual(gatewayLayout('a').dev, gatewayLayout('b').dev);
  });
});
