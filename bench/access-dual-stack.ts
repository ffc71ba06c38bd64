/**
 * Access rules on a dual-stack cluster against the same cluster single stack, in one run (root; nft in
 * a scratch network namespace): 100 rules x 500 users x 5,000 pods, each pod (and client) with one
 * address (IPv4 only) or two (IPv4 + IPv6, IPv6 twins of every set). Rounds alternate; medians of 3.
 * Figures: first compile, and the initial nft load of the whole table (one transaction). Prints ratios
 * dual / single; never fails on a time.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { AccessCompiler } from '../src/access/compile.js';
import { renderTable } from '../src/access/nft-script.js';
import type { ClusterEvent, ResolvedRule } from '../src/access/types.js';
import { exec } from '../src/lib/exec.js';
import { TunnelSubnets } from '../src/lib/tunnel-subnets.js';
import { canUseNetns, createNamespace, destroyNamespace } from '../test/helpers/netns.js';
import { median } from './stats.js';

const NAMESPACES = 25;
const PODS = 5000;
const USERS = 500;
const RULES = 100;

const round = (x: number) => Math.round(x * 100) / 100;
const podIp = (i: number) => `10.244.${Math.floor(i / 250)}.${(i % 250) + 2}`;
const podIp6 = (i: number) =>
  `fd00:10:244:${Math.floor(i / 250).toString(16)}::${((i % 250) + 2).toString(16)}`;
const user = (i: number) => `10.140.${Math.floor(i / 250)}.${(i % 250) + 2}`;

function world(dual: boolean): ClusterEvent[] {
  const ev: ClusterEvent[] = [{ type: 'resync-start' }];
  for (let n = 0; n < NAMESPACES; n++)
    ev.push({ type: 'upsert', kind: 'namespace', object: { name: `ns-${n}`, labels: {} } });
  for (let i = 0; i < PODS; i++)
    ev.push({
      type: 'upsert',
      kind: 'pod',
      object: {
        uid: `u${i}`,
        namespace: `ns-${i % NAMESPACES}`,
        name: `p${i}`,
        labels: { app: `app-${i % 20}` },
        ips: dual ? [podIp(i), podIp6(i)] : [podIp(i)],
      },
    });
  ev.push({ type: 'resync-done' });
  return ev;
}

function rules(dual: boolean): ResolvedRule[] {
  const subnets = new TunnelSubnets('10.140.0.0/16', dual ? 'fd00:140::/64' : undefined);
  return Array.from({ length: RULES }, (_, r) => ({
    name: `rule-${r}`,
    clients: subnets.withIpv6(Array.from({ length: USERS / 10 }, (_, k) => user((r * 7 + k) % USERS))),
    destinations: [
      {
        kind: 'pod' as const,
        namespace: `ns-${r % NAMESPACES}`,
        selector: { matchLabels: { app: `app-${r % 20}` } },
      },
    ],
    protocol: r % 2 ? ('tcp' as const) : ('any' as const),
    ports: r % 2 ? [{ from: 8080, to: 8080 }] : [],
  }));
}

export interface DualStackBenchResult {
  elements: { single: number; dual: number };
  compileMs: { single: number; dual: number };
  nftLoadMs: { single: number; dual: number };
}

export async function runAccessDualStackBench(): Promise<DualStackBenchResult | undefined> {
  if (!(await canUseNetns())) {
    console.log('access dual-stack bench skipped: needs root and network namespaces');
    return undefined;
  }
  const ns = await createNamespace('pgbd6');
  const times = {
    single: { compile: [] as number[], load: [] as number[] },
    dual: { compile: [] as number[], load: [] as number[] },
  };
  const elements = { single: 0, dual: 0 };
  try {
    for (let round_ = 0; round_ < 3; round_++) {
      for (const kind of ['single', 'dual'] as const) {
        const dual = kind === 'dual';
        const t0 = performance.now();
        const c = new AccessCompiler();
        c.setRules(rules(dual));
        for (const e of world(dual)) c.apply(e);
        const script = renderTable({
          mode: 'enforce',
          tun: 'tun*',
          dns: ['10.96.0.10'],
          rules: c.snapshot(),
        });
        times[kind].compile.push(performance.now() - t0);
        elements[kind] = c.counts.elements;
        await exec(['ip', 'netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'podgate'], {
          check: false,
        });
        const t1 = performance.now();
        await exec(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], { input: script, timeoutMs: 120_000 });
        times[kind].load.push(performance.now() - t1);
      }
    }
  } finally {
    await destroyNamespace(ns);
  }
  const r: DualStackBenchResult = {
    elements,
    compileMs: { single: round(median(times.single.compile)), dual: round(median(times.dual.compile)) },
    nftLoadMs: { single: round(median(times.single.load)), dual: round(median(times.dual.load)) },
  };
  console.log(
    `${RULES} rules x ${USERS} users x ${PODS} pods: elements single ${elements.single}, dual ${elements.dual}; ` +
      `compile+render ${r.compileMs.single} ms vs ${r.compileMs.dual} ms (dual/single ${round(r.compileMs.dual / r.compileMs.single)}x); ` +
      `initial nft load ${r.nftLoadMs.single} ms vs ${r.nftLoadMs.dual} ms (${round(r.nftLoadMs.dual / r.nftLoadMs.single)}x)`,
  );
  return r;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runAccessDualStackBench();
