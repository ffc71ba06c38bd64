/**
 * Access rules enforced by `podgate server run`, in network namespaces:
 *
 *   office  (alice) 172.18.12.100 ─┐                      ┌─ pod  10.244.1.5 (echo :7007)
 *                                  ├─ node 172.18.12.21 ──┤
 *   office2 (bob)   172.18.13.100 ─┘  (server run, nft)   └─ pod2 10.244.2.5 (echo :7007, DNS :53)
 *
 * access.json is written by the test (what the manager publishes). `access.modeBeforeBundle: enforce`.
 * Checked: with no bundle the table is DNS only and devices are refused; alice gets her stable address
 * and reaches only what her rule allows (TCP and ping); a rule change reaches her live session without
 * a reconnect; bob, dropped from the bundle, loses his session (HALT) and is refused at connect; a
 * restart of `server run` never lets a prober through to the denied pod.
 * Latencies are printed (for bench notes), never asserted.
 */
import assert from 'node:assert/strict';
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
import { waitClientConnected } from '../helpers/openvpn.js';
import { count, requireNetns, until, VpnLab } from '../helpers/topology.js';

const POD1 = '10.244.1.5';
const POD2 = '10.244.2.5';
const ALICE = '10.140.0.10';
const BOB = '10.140.0.11';
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

function bundle(
  version: number,
  clients: [string, string][],
  rules: { name: string; clients: string[]; cidr: string }[],
) {
  return {
    version,
    mode: 'enforce',
    generatedAt: new Date().toISOString(),
    clients: clients.map(([commonName, address]) => ({ commonName, address })),
    rules: rules.map((r) => ({
      name: r.name,
      clients: r.clients,
      destinations: [{ kind: 'cidr', cidr: r.cidr }],
      protocol: 'any',
      ports: [],
    })),
  };
}

describe('e2e: access rules enforced by server run (nftables + client-config-dir)', function () {
  this.timeout(240_000);
  let lab: VpnLab;
  let alice: SpawnedProcess;
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
    await lab.issue('alice');
    await lab.issue('bob');
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
    lab.writeAccess(
      bundle(
        1,
        [
          ['alice', ALICE],
          ['bob', BOB],
        ],
        [
          { name: 'alice-pod1', clients: [ALICE], cidr: '10.244.1.0/24' },
          { name: 'bob-pod2', clients: [BOB], cidr: '10.244.2.0/24' },
        ],
      ),
    );
    await lab.serverSays(/access bundle applied/, 0, 10_000);
    alice = lab.client('alice');
    await waitClientConnected(alice);
    assert.match(alice.output(), new RegExp(`net_addr_v4_add: ${ALICE.replace(/\./g, '\\.')}/16`));
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
    lab.writeAccess(
      bundle(
        2,
        [
          ['alice', ALICE],
          ['bob', BOB],
        ],
        [
          { name: 'alice-pod1', clients: [ALICE], cidr: '10.244.2.0/24' },
          { name: 'bob-pod2', clients: [BOB], cidr: '10.244.2.0/24' },
        ],
      ),
    );
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

  it('bob, dropped from the bundle, loses his live session (HALT) and is refused at connect', async () => {
    const bob = lab.client('bob', { role: 'office2' });
    await waitClientConnected(bob);
    lab.writeAccess(
      bundle(3, [['alice', ALICE]], [{ name: 'alice-pod1', clients: [ALICE], cidr: '10.244.2.0/24' }]),
    );
    await bob.waitFor(/server-pushed-halt/, 20_000);
    await bob.stop(5000);
    const store = SqliteStore.open(join(lab.dataDir, DB_FILE_NAME));
    try {
      const rows = store.listAudit({ action: 'access.session-ended', target: 'bob' });
      assert.equal(rows.length, 1, 'the kill is audited');
      assert.equal((rows[0]!.details as { reason: string }).reason, 'not-allowed');
    } finally {
      store.close();
    }
    const before = count(lab.server!.output(), CCD_REFUSED);
    const again = lab.client('bob', { role: 'office2' });
    try {
      await until(() => count(lab.server!.output(), CCD_REFUSED) > before, 20_000, 'bob refused at connect');
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
