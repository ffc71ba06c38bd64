/**
 * Access rules at scale (root; nft in a scratch network namespace, iperf3 through `server run`):
 * - compile: 200 rules × 1,000 users × 10,000 pods (scripted cluster objects), first compile and the
 *   initial nft load (one transaction), next to `nft list tables` (the cost of starting nft) measured in
 *   the same run;
 * - incremental: one pod event → element change in the kernel (compiler + nft transaction), through the
 *   AccessAgent with a scripted source, median and worst of 40; one rule edit (a bundle) likewise;
 * - throughput: iperf3, one TCP stream office → pod through the tunnel, `enforce` with 200 rules vs
 *   `open`, alternated in the same run (goal: ratio ≥ 0.95).
 * Prints figures; never fails on a time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { AccessCompiler } from '../src/access/compile.js';
import { renderTable } from '../src/access/nft-script.js';
import type { AccessBundle, ClusterEvent, ClusterObjectSource, ResolvedRule } from '../src/access/types.js';
import { exec } from '../src/lib/exec.js';
import { AccessAgent } from '../src/openvpn/access-agent.js';
import { ClientConfigDir } from '../src/openvpn/client-config-dir.js';
import { NftEnforcer } from '../src/openvpn/nft-enforcer.js';
import { canUseNetns, cleanupAll, createNamespace, destroyNamespace } from '../test/helpers/netns.js';
import { waitClientConnected } from '../test/helpers/openvpn.js';
import { VpnLab } from '../test/helpers/topology.js';
import { median } from './stats.js';

const NAMESPACES = 50;
const PODS = 10_000;
const USERS = 1000;
const RULES = 200;

const round = (x: number) => Math.round(x * 10) / 10;
const podIp = (i: number) =>
  `10.${244 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${(i % 256) + 1}`;
const user = (i: number) => `10.140.${Math.floor(i / 250)}.${(i % 250) + 2}`;

/** The scripted cluster: namespaces, pods (labels app-0..19) and 10 Services per namespace. */
function objects(): ClusterEvent[] {
  const ev: ClusterEvent[] = [{ type: 'resync-start' }];
  for (let n = 0; n < NAMESPACES; n++)
    ev.push({
      type: 'upsert',
      kind: 'namespace',
      object: { name: `ns-${n}`, labels: { team: `t${n % 10}` } },
    });
  for (let i = 0; i < PODS; i++) {
    const ns = `ns-${i % NAMESPACES}`;
    ev.push({
      type: 'upsert',
      kind: 'pod',
      object: {
        uid: `u${i}`,
        namespace: ns,
        name: `p${i}`,
        labels: { app: `app-${i % 20}` },
        ips: [podIp(i)],
      },
    });
  }
  for (let n = 0; n < NAMESPACES; n++)
    for (let s = 0; s < 10; s++)
      ev.push({
        type: 'upsert',
        kind: 'service',
        object: {
          namespace: `ns-${n}`,
          name: `svc-${s}`,
          labels: { tier: `t${s % 3}` },
          clusterIPs: [`10.96.${n}.${s + 10}`],
          ports: [
            { protocol: 'TCP', port: 80 },
            { protocol: 'TCP', port: 8443 },
          ],
          selector: { app: `app-${s}` },
        },
      });
  ev.push({ type: 'resync-done' });
  return ev;
}

/** 200 rules over 1,000 users: namespace, Service and pod-selector rules, some with ports. */
function rules(): ResolvedRule[] {
  const out: ResolvedRule[] = [];
  for (let r = 0; r < RULES; r++) {
    const clients = Array.from({ length: 50 }, (_, k) => user((r * 37 + k * 13) % USERS));
    const n = `ns-${r % NAMESPACES}`;
    const kind = r % 4;
    out.push({
      name: `rule-${r}`,
      clients,
      destinations:
        kind === 0
          ? [{ kind: 'namespace', names: [n] }]
          : kind === 1
            ? [{ kind: 'service', namespace: n, selector: { matchLabels: { tier: 't1' } } }]
            : kind === 2
              ? [{ kind: 'pod', namespace: n, selector: { matchLabels: { app: `app-${r % 20}` } } }]
              : [{ kind: 'namespace', selector: { matchLabels: { team: `t${r % 10}` } } }],
      protocol: kind === 2 ? 'tcp' : 'any',
      ports: kind === 2 ? [{ from: 8080, to: 8090 }] : [],
    });
  }
  return out;
}

class ScriptedSource implements ClusterObjectSource {
  cb: ((e: ClusterEvent) => void) | undefined;
  start(onEvent: (e: ClusterEvent) => void): void {
    this.cb = onEvent;
  }
  async stop(): Promise<void> {}
}

export interface AccessBenchResult {
  elements: number;
  compileMs: number;
  nftInitialLoadMs: number;
  nftStartBaselineMs: number;
  podEventToKernelMs: { median: number; worst: number };
  ruleEditToKernelMs: { median: number; worst: number };
  iperf?: { openMbit: number[]; enforceMbit: number[]; ratio: number };
}

async function scale(): Promise<Omit<AccessBenchResult, 'iperf'>> {
  const netns = await createNamespace('pgbench');
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-access-'));
  try {
    const events = objects();
    const rs = rules();
    const t0 = performance.now();
    const c = new AccessCompiler();
    c.setRules(rs);
    for (const e of events) c.apply(e);
    const snapshot = c.snapshot();
    const compileMs = performance.now() - t0;
    const prefix = ['ip', 'netns', 'exec', netns];
    const base: number[] = [];
    for (let i = 0; i < 5; i++) {
      const b = performance.now();
      await exec([...prefix, 'nft', 'list', 'tables']);
      base.push(performance.now() - b);
    }
    const script = renderTable({ mode: 'enforce', tun: 'tun*', dns: ['10.96.0.10'], rules: snapshot });
    const l0 = performance.now();
    await exec([...prefix, 'nft', '-f', '-'], { input: script, timeoutMs: 120_000 });
    const nftInitialLoadMs = performance.now() - l0;

    // The agent path: scripted source → compiler → one nft transaction per batch.
    const src = new ScriptedSource();
    const agent = new AccessAgent({
      enforcer: new NftEnforcer({ prefix }),
      ccd: new ClientConfigDir(join(dir, 'ccd'), '255.255.0.0'),
      cluster: src,
      dnsServers: ['10.96.0.10'],
      modeWithoutBundle: 'enforce',
      batchMs: 0,
    });
    await agent.start();
    const bundle = (version: number, r: ResolvedRule[]): AccessBundle => ({
      version,
      mode: 'enforce',
      generatedAt: new Date().toISOString(),
      clients: Array.from({ length: USERS }, (_, i) => ({ commonName: `u${i}`, address: user(i) })),
      rules: r,
    });
    await agent.applyBundle(bundle(1, rs));
    for (const e of events) src.cb!(e);
    await agent.settled();
    const podTimes: number[] = [];
    for (let i = 0; i < 40; i++) {
      const s = performance.now();
      src.cb!({
        type: 'upsert',
        kind: 'pod',
        object: {
          uid: `new${i}`,
          namespace: 'ns-0',
          name: `n${i}`,
          labels: { app: 'app-0' },
          ips: [`10.250.0.${i + 1}`],
        },
      });
      await new Promise((r) => setImmediate(r));
      await agent.settled();
      podTimes.push(performance.now() - s);
    }
    const ruleTimes: number[] = [];
    for (let i = 0; i < 10; i++) {
      const edited = rs.map((r, k) => (k === i ? { ...r, clients: r.clients.slice(1) } : r));
      const s = performance.now();
      await agent.applyBundle(bundle(2 + i, edited));
      ruleTimes.push(performance.now() - s);
    }
    await agent.stop();
    return {
      elements: c.counts.elements,
      compileMs: round(compileMs),
      nftInitialLoadMs: round(nftInitialLoadMs),
      nftStartBaselineMs: round(median(base)),
      podEventToKernelMs: { median: round(median(podTimes)), worst: round(Math.max(...podTimes)) },
      ruleEditToKernelMs: { median: round(median(ruleTimes)), worst: round(Math.max(...ruleTimes)) },
    };
  } finally {
    await destroyNamespace(netns);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** iperf3 through `server run`: the same session, bundles switching open ↔ enforce (200 rules). */
async function throughput(): Promise<AccessBenchResult['iperf']> {
  const lab = await VpnLab.create({
    prefix: 'pgbi',
    vpn: ['  nat: true'],
    top: ['access: { modeBeforeBundle: enforce }'],
  });
  try {
    await lab.init();
    await lab.issue('alice');
    // 200 rules through the manager's CLI (alice's device belongs to admin); the last one is the
    // pod's range, so a new connection walks past 199 others.
    const file = join(lab.work, 'rules.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        rules: Array.from({ length: RULES }, (_, r) => ({
          name: `rule-${r}`,
          subjects: [{ kind: 'user', name: 'admin' }],
          destinations: [
            { kind: 'cidr', cidr: r === RULES - 1 ? '10.244.1.0/24' : `10.${100 + (r % 50)}.${r}.0/24` },
          ],
        })),
      }),
    );
    await lab.cli('access', 'apply', '-f', file);
    const write = (mode: 'open' | 'enforce') => lab.cli('access', 'mode', mode);
    await write('enforce');
    await lab.startServerRun();
    await lab.serverSays(/access bundle applied/, 0, 10_000);
    const iperfServer = lab.topo.spawn('pod', ['iperf3', '-s', '-B', '10.244.1.5', '--forceflush']);
    await iperfServer.waitFor(/Server listening/, 10_000);
    const client = lab.client('alice');
    await waitClientConnected(client);
    const run = async (): Promise<number> => {
      const r = await lab.topo.run('office', ['iperf3', '-c', '10.244.1.5', '-t', '4', '-J'], {
        timeoutMs: 30_000,
      });
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
      return Math.round(j.end.sum_received.bits_per_second / 1e6);
    };
    const open: number[] = [];
    const enforce: number[] = [];
    for (let i = 0; i < 3; i++) {
      const applied = (n: number) => lab.serverSays(/access bundle applied/, n, 10_000);
      let n = (lab.server!.output().match(/access bundle applied/g) ?? []).length;
      await write('open');
      await applied(n);
      open.push(await run());
      n += 1;
      await write('enforce');
      await applied(n);
      enforce.push(await run());
    }
    await client.stop(5000);
    return {
      openMbit: open,
      enforceMbit: enforce,
      ratio: Number((median(enforce) / median(open)).toFixed(2)),
    };
  } finally {
    await lab.close();
  }
}

export async function runAccessBench(): Promise<AccessBenchResult | undefined> {
  if (!(await canUseNetns())) {
    console.log('access bench skipped: needs root and network namespaces');
    return undefined;
  }
  const s = await scale();
  console.log(
    `${RULES} rules x ${USERS} users x ${PODS} pods: ${s.elements} set elements; compile ${s.compileMs} ms; ` +
      `initial nft load ${s.nftInitialLoadMs} ms (nft start-up alone ${s.nftStartBaselineMs} ms, ` +
      `ratio ${round(s.nftInitialLoadMs / s.nftStartBaselineMs)}x)`,
  );
  console.log(
    `pod event -> kernel set: median ${s.podEventToKernelMs.median} ms, worst ${s.podEventToKernelMs.worst} ms ` +
      `(${round(s.podEventToKernelMs.median / s.nftStartBaselineMs)}x nft start-up); ` +
      `rule edit (bundle) -> kernel: median ${s.ruleEditToKernelMs.median} ms, worst ${s.ruleEditToKernelMs.worst} ms`,
  );
  let iperf: AccessBenchResult['iperf'];
  try {
    iperf = await throughput();
    console.log(
      `iperf3 one stream through the tunnel: open ${iperf!.openMbit.join('/')} Mbit/s, enforce+${RULES} rules ` +
        `${iperf!.enforceMbit.join('/')} Mbit/s; ratio of medians ${iperf!.ratio}`,
    );
  } finally {
    await cleanupAll();
  }
  return { ...s, iperf };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runAccessBench();
