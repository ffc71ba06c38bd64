/**
 * Access rules enforced by `podgate server run`, in network namespaces:
 *
 *   office  (alice) 172.18.12.100 ─┐                      ┌─ pod  10.244.1.5 (echo :7007)
 *                                  ├─ node 172.18.12.21 ──┤
 *   office2 (bob)   172.18.13.100 ─┘  (server run, nft)   └─ pod2 10.244.2.5 (echo :7007, DNS :53)
 *
 * The bundle comes from the manager's real CLI (`access apply`, `user disable`), which publishes
 * `<dataDir>/server/access.json`; `access.modeBeforeBundle: enforce`.
 * Checked: with no bundle the table is DNS only and devices are refused; alice gets her stable address
 * and reaches only what her rule allows (TCP and ping); a rule change reaches her live session without
 * a reconnect; bob, dropped from the bundle, loses his session (HALT) and is refused at connect; a
 * restart of `server run` never lets a prober through to the denied pod.
 * Latencies are printed (for bench notes), never asserted.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  dnsQuery,
  startDnsServer,
  startEchoServer,
  tcpProbe,
  type SpawnedProcess,
} from '../helpers/netns.js';
import { spawnIn } from '../helpers/netns.js';
import { DB_FILE_NAME, SqliteStore } from '../../src/store/index.js';
import { waitClientConnected, PUSHED_HALT } from '../helpers/openvpn.js';
import { count, requireNetns, REVOKED, until, VpnLab } from '../helpers/topology.js';

const POD1 = '10.244.1.5';
const POD2 = '10.244.2.5';
const CCD_REFUSED = /client-config-dir authentication failed|ccd-exclusive|CCD/i;

const PROBER = [
  "const net = require('net');",
  'const [host, port] = [process.argv[1], Number(process.argv[2])];',
  'let ok = 0, tries = 0;',
  'function once() {',
  '  tries++;',
  '  const s = net.connect({ host, port });',
  '  const done = (good) => { s.destroy(); if (good) ok++; setTimeout(once, 100); };',
  '  s.setTimeout(300, () => done(false));',
  "  s.on('connect', () => done(true));",
  "  s.on('error', () => done(false));",
  '}',
  'setInterval(() => console.log(`probe ${host} tries=${tries} ok=${ok}`), 500);',
  'once();',
].join('\n');

/** A rules file (JSON is YAML): each user reaches one CIDR. */
function rulesFile(rules: { name: string; user: string; cidr: string }[]): string {
  return JSON.stringify({
    rules: rules.map((r) => ({
      name: r.name,
      subjects: [{ kind: 'user', name: r.user }],
      destinations: [{ kind: 'cidr', cidr: r.cidr }],
    })),
  });
}

describe('e2e: access rules enforced by server run (nftables + client-config-dir)', function () {
  this.timeout(240_000);
  let lab: VpnLab;
  let alice: SpawnedProcess;
  /** Stable addresses the manager gave the two devices (from the published bundle). */
  const addr: Record<string, string> = {};
  const accessFile = () => join(lab.dataDir, 'server', 'access.json');
  const apply = async (rules: { name: string; user: string; cidr: string }[]) => {
    const f = join(lab.work, `rules-${Date.now()}.yaml`);
    writeFileSync(f, rulesFile(rules));
    await lab.cli('access', 'apply', '-f', f);
  };
  const issueFor = async (user: string) => {
    const out = join(lab.work, `${user}.ovpn`);
    await lab.cli('cert', 'issue', user, '--owner', user, '--out', out);
    lab.profiles[user] = readFileSync(out, 'utf8');
  };
  const reach = (ip: string, ns = 'office') => tcpProbe(lab.topo.name(ns), ip, 7007, 1500);
  const ping = async (ip: string) =>
    (await lab.topo.run('office', ['busybox', 'ping', '-c', '1', '-W', '1', ip], { check: false })).code ===
    0;
  const nftTable = async () =>
    (await lab.topo.run('node', ['nft', 'list', 'table', 'inet', 'podgate'], { check: false })).stdout;

  before(async function () {
    await requireNetns(this);
    lab = await VpnLab.create({
      prefix: 'pgx',
      vpn: ['  nat: true', `  dns: { servers: ["${POD2}"] }`],
      top: ['access: { modeBeforeBundle: enforce }'],
    });
    await lab.addPod('pod2', POD2);
    await lab.topo.link('office2', '172.18.13.100/24', 'node', '172.18.13.21/24');
    await lab.topo.route('office2', '172.18.12.0/24', '172.18.13.21');
    await startEchoServer(lab.topo.name('pod'), '0.0.0.0', 7007);
    await startEchoServer(lab.topo.name('pod2'), '0.0.0.0', 7007);
    await startDnsServer(lab.topo.name('pod2'), POD2, { 'web.team-b.svc.cluster.local': POD2 });
    await lab.init();
    for (const u of ['alice', 'bob']) {
      await lab.cli('user', 'add', u, '--password-file', join(lab.work, 'admin.pw'));
      await issueFor(u);
    }
    const published = JSON.parse(readFileSync(accessFile(), 'utf8')) as {
      clients: { commonName: string; address: string }[];
    };
    for (const c of published.clients) addr[c.commonName] = c.address;
    assert.ok(addr.alice && addr.bob, 'the manager gave both devices an address');
    // Start as a server that has never received a bundle.
    rmSync(accessFile());
  });
  after(async () => {
    await lab?.close();
  });

  it('enforce with no bundle: the table allows DNS only, and every device is refused at connect', async () => {
    await lab.startServerRun();
    const table = await nftTable();
    assert.match(table, /set dns \{[^}]*elements = \{ 10\.244\.2\.5 \}/s);
    assert.match(table, /chain rules \{\s*\}/, 'no rule accepts anything');
    assert.match(table, /counter name "dropped" drop/);
    await lab.refused('alice', CCD_REFUSED);
  });

  it('alice gets her stable address and reaches only the first pod (TCP and ping); DNS always', async () => {
    await apply([
      { name: 'alice-pod1', user: 'alice', cidr: '10.244.1.0/24' },
      { name: 'bob-pod2', user: 'bob', cidr: '10.244.2.0/24' },
    ]);
    await lab.serverSays(/access bundle applied/, 0, 10_000);
    alice = lab.client('alice');
    await waitClientConnected(alice);
    assert.match(alice.output(), new RegExp(`net_addr_v4_add: ${addr.alice!.replace(/\./g, '\\.')}/16`));
    assert.equal(await reach(POD1), true, 'TCP to the allowed pod');
    assert.equal(await ping(POD1), true, 'ping to the allowed pod');
    assert.equal(await reach(POD2), false, 'TCP to the other pod is dropped');
    assert.equal(await ping(POD2), false, 'ping to the other pod is dropped');
    assert.equal(await dnsQuery(lab.topo.name('office'), POD2, 'web.team-b.svc.cluster.local'), POD2);
    assert.match(await nftTable(), /counter dropped \{\s*packets [1-9]/, 'drops are counted');
  });

  it('a rule change reaches the live session without a reconnect', async () => {
    const t0 = Date.now();
    let effective = 0;
    await apply([
      { name: 'alice-pod1', user: 'alice', cidr: '10.244.2.0/24' },
      { name: 'bob-pod2', user: 'bob', cidr: '10.244.2.0/24' },
    ]);
    // Short probes while waiting, to measure; then the full checks.
    await until(
      async () => tcpProbe(lab.topo.name('office'), POD2, 7007, 200),
      20_000,
      'the new rule in force',
    );
    effective = Date.now() - t0;
    process.stdout.write(`      [bench] rule change to effect on a live session: <= ${effective} ms\n`);
    assert.equal(await reach(POD2), true);
    assert.equal(await reach(POD1), false);
    assert.equal(count(alice.output(), /Initialization Sequence Completed/), 1, 'no reconnect');
    assert.equal(alice.running, true);
  });

  it('bob, disabled (dropped from the bundle), loses his live session (HALT) and is refused at connect', async () => {
    const bob = lab.client('bob', { role: 'office2' });
    await waitClientConnected(bob);
    await lab.cli('user', 'disable', 'bob'); // the manager drops his device from the bundle
    await bob.waitFor(PUSHED_HALT, 20_000);
    await bob.stop(5000);
    const store = SqliteStore.open(join(lab.dataDir, DB_FILE_NAME));
    try {
      // Disabling revokes too: the revocation agent and the access agent race to end the session; the
      // one that found it audits it (`access.session-ended`, reason not-allowed, or `revocation.effective`).
      const ended = await store.listAudit({ action: 'access.session-ended', target: 'bob' });
      const revoked = await store.listAudit({ action: 'revocation.effective', target: 'bob' });
      assert.ok(ended.length + revoked.length >= 1, 'the kill is audited');
      for (const r of ended) assert.equal((r.details as { reason: string }).reason, 'not-allowed');
    } finally {
      await store.close();
    }
    // Disabling also revokes his certificate: the CRL or the missing ccd file refuses him, whichever
    // openvpn checks first (the ccd-only refusal is the first test's).
    const REFUSED = new RegExp(`${CCD_REFUSED.source}|${REVOKED.source}`, 'i');
    const before = count(lab.server!.output(), REFUSED);
    const again = lab.client('bob', { role: 'office2' });
    try {
      await until(() => count(lab.server!.output(), REFUSED) > before, 20_000, 'bob refused at connect');
      assert.doesNotMatch(again.output(), /Initialization Sequence Completed/);
    } finally {
      await again.stop(5000);
    }
  });

  it('a restart of server run never lets a prober through to the denied pod', async () => {
    const denied = spawnIn(lab.topo.name('office'), [process.execPath, '-e', PROBER, POD1, '7007'], {
      logFile: join(lab.work, 'prober-denied.log'),
    });
    const allowed = spawnIn(lab.topo.name('office'), [process.execPath, '-e', PROBER, POD2, '7007'], {
      logFile: join(lab.work, 'prober-allowed.log'),
    });
    try {
      await denied.waitFor(/tries=\d+/, 5000);
      const last = (p: SpawnedProcess): { tries: number; ok: number } => {
        const line =
          p
            .output()
            .trim()
            .split('\n')
            .filter((l) => l.startsWith('probe'))
            .pop() ?? '';
        const m = /tries=(\d+) ok=(\d+)/.exec(line);
        return { tries: Number(m?.[1] ?? 0), ok: Number(m?.[2] ?? 0) };
      };
      // Sample the table all along: it must never be missing, open, or without its drop rule.
      let watching = true;
      let samples = 0;
      let missing = 0;
      const watch = (async () => {
        while (watching) {
          samples++;
          const t = await nftTable();
          if (!/counter name "dropped" drop/.test(t) || /"tun\*" accept\s+accept/.test(t)) missing++;
        }
      })();
      const okBefore = last(allowed).ok;
      await lab.server!.stop(8000);
      await lab.startServerRun();
      await until(() => last(allowed).ok > okBefore, 60_000, 'alice back on the allowed pod');
      const triesBack = last(denied).tries;
      await until(() => last(denied).tries > triesBack + 5, 20_000, 'more probes after the restart');
      watching = false;
      await watch;
      const d = last(denied);
      assert.equal(d.ok, 0, `never through to the denied pod (${d.tries} tries)`);
      assert.ok(samples > 5, `table sampled ${samples} times`);
      assert.equal(missing, 0, `the table was missing in ${missing} of ${samples} samples`);
    } finally {
      await denied.stop(2000);
      await allowed.stop(2000);
    }
  });
});
