/**
 * "Connect automatically" on Linux, as far as this machine allows: systemd is not PID 1 here (the unit
 * cannot be enabled or started), so the test runs the command line of Debian's own
 * `openvpn-client@.service` (ExecStart with %i filled in, in a copy of its WorkingDirectory) in the office
 * namespace with the file the set-up page tells people to install, and checks the page's command names
 * that unit and that directory. NetworkManager is not installed here: its command is not run.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { openContext, type AppContext } from '../../src/services/context.js';
import { createApp } from '../../src/web/app.js';
import { setLogLevel } from '../../src/lib/logger.js';
import { ADMIN_PASSWORD, requireNetns, VpnLab } from '../helpers/topology.js';
import { OFFICE_NODE_POD as A, runIn, tcpProbe, startEchoServer } from '../helpers/netns.js';
import { CLI } from '../helpers/cli.js';

const UNIT = '/lib/systemd/system/openvpn-client@.service';

/** `Key=value` of a unit file's [Service] section. */
function unitValue(text: string, key: string): string {
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
  assert.ok(m, `${UNIT} has ${key}=`);
  return m[1]!.trim();
}

describe('e2e: connect automatically with the openvpn-client@ systemd unit', function () {
  this.timeout(120_000);
  let lab: VpnLab;
  let ctx: AppContext;
  let dir: string;

  before(async function () {
    await requireNetns(this, existsSync(UNIT), `${UNIT} is missing (apt-get install openvpn)`);
    setLogLevel('error');
    lab = await VpnLab.create({ prefix: 'aon', vpn: ['  nat: true'] });
    await lab.init();
    await lab.startServerRun();
    dir = mkdtempSync(join(tmpdir(), 'podgate-always-on-'));
  });

  after(async () => {
    await ctx?.close();
    await lab?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the set-up page's command installs the profile where the unit reads it, under the instance name it starts", async () => {
    ctx = await openContext(lab.config());
    const agent = request.agent(createApp({ ctx }));
    await agent.post('/api/v1/login').send({ name: 'admin', password: ADMIN_PASSWORD }).expect(200);
    const html = (await agent.get('/setup').expect(200)).text;
    const block = /<pre id="always-on-systemd"><code>([\s\S]*?)<\/code><\/pre>/.exec(html)?.[1] ?? '';
    const unit = readFileSync(UNIT, 'utf8');
    const workDir = unitValue(unit, 'WorkingDirectory');
    const install = /install -m 600 \S+ (\S+)\/(\w+)\.conf/.exec(block);
    assert.ok(install, `an install line in: ${block}`);
    assert.equal(install[1], workDir, 'the file goes where the unit runs');
    assert.match(block, new RegExp(`systemctl enable --now openvpn-client@${install[2]}\\b`));
  });

  it("the unit's ExecStart, run with that file, brings the tunnel up and reaches the pod", async () => {
    const unit = readFileSync(UNIT, 'utf8');
    const argv = unitValue(unit, 'ExecStart').replace(/%i/g, 'podgate').split(/\s+/);
    assert.equal(argv[0], '/usr/sbin/openvpn');
    writeFileSync(join(dir, 'podgate.conf'), await lab.issue('laptop'), { mode: 0o600 });
    await startEchoServer(lab.topo.name('pod'), '0.0.0.0', 7010);
    assert.equal(await tcpProbe(lab.topo.name('office'), A.pod, 7010, 1000), false, 'no route before');
    const client = lab.topo.spawn('office', argv, { cwd: dir, logFile: join(dir, 'unit.log') });
    try {
      await client.waitFor(/Initialization Sequence Completed/, 30_000);
      assert.equal(
        await tcpProbe(lab.topo.name('office'), A.pod, 7010),
        true,
        'the pod answers through the tunnel',
      );
    } finally {
      await client.stop(5000);
    }
  });

  /** `podgate doctor --client FILE --json` run in the office namespace (its handshake uses --dev null). */
  async function doctor(
    file: string,
    cfg = lab.cfgFile,
  ): Promise<{ code: number; findings: Record<string, string> }> {
    const r = await runIn(
      lab.topo.name('office'),
      [process.execPath, CLI, '--config', cfg, 'doctor', '--client', file, '--json'],
      {
        check: false,
        timeoutMs: 60_000,
      },
    );
    const list = JSON.parse(r.stdout) as { level: string; check: string; detail: string }[];
    const findings: Record<string, string> = {};
    for (const f of list)
      findings[f.check] = `${findings[f.check] ? findings[f.check] + ' | ' : ''}${f.level}: ${f.detail}`;
    return { code: r.code ?? 0, findings };
  }

  it('doctor --client: green for a good profile, red with the fix for missing routes and for a revoked one', async () => {
    const file = join(dir, 'doctor.ovpn');
    writeFileSync(file, await lab.issue('desk'), { mode: 0o600 });
    const good = await doctor(file);
    assert.equal(good.code, 0, JSON.stringify(good.findings));
    for (const c of ['expiry', 'certificate', 'ca', 'endpoints', 'handshake', 'routes'])
      assert.match(good.findings[c] ?? '', /^ok: /, `${c}: ${good.findings[c]}`);
    assert.match(good.findings.routes!, new RegExp(A.podCidr.replace(/\./g, '\\.')));

    // The config now wants the service range too, but the running server still pushes only the pods.
    const cfg2 = join(dir, 'podgate-more-routes.yaml');
    writeFileSync(
      cfg2,
      readFileSync(lab.cfgFile, 'utf8').replace(
        /routes: \{ pods: (\[[^\]]*\]) \}/,
        `routes: { pods: $1, services: ["${A.serviceCidr}"] }`,
      ),
    );
    const stale = await doctor(file, cfg2);
    assert.equal(stale.code, 1, JSON.stringify(stale.findings));
    assert.match(
      stale.findings.routes ?? '',
      /^fail: the server does not push 10\.96\.0\.0\/12.*restart or redeploy/,
    );

    await lab.cli('cert', 'revoke', 'desk');
    const revoked = await doctor(file);
    assert.equal(revoked.code, 1);
    assert.match(revoked.findings.certificate ?? '', /^fail: .*revoked/);
    assert.match(revoked.findings.handshake ?? '', /^fail: /);
    assert.deepEqual(
      readdirSync(tmpdir()).filter((n) => n.startsWith('podgate-probe-')),
      [],
      'the probe leaves no temp dir',
    );
  });
});
