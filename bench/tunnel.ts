/**
 * Tunnel throughput, office -> pod, one TCP stream (iperf3), with openvpn 2.6 in network namespaces
 * (root; test/helpers/netns: office ─ node ─ pod). Baseline in the same run: podgate's rendered
 * server.conf without its throughput options (TUNING_DIRECTIVES and the pushed buffer sizes), i.e.
 * openvpn's defaults for those; then the config as shipped, each option alone, and CHACHA20-POLY1305
 * preferred. Clients run the profile as shipped (they get the buffer sizes pushed). Rounds interleave the
 * variants so that load from elsewhere hits all alike; medians. The same veth path without the tunnel
 * (office -> node) shows what the wire would carry. Prints figures; never fails on a time.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { TUNING_DIRECTIVES } from '../src/profiles/server-config.js';
import {
  canUseNetns,
  cleanupAll,
  officeNodePod,
  spawnIn,
  OFFICE_NODE_POD as A,
  type SpawnedProcess,
  type Topology,
} from '../test/helpers/netns.js';
import {
  makeServerDir,
  makeTestPki,
  masqueradeClients,
  startClient,
  startServer,
  testClientProfile,
  testVpnConfig,
  waitClientConnected,
  waitServerReady,
  writeServerFiles,
  type ServerFilesOut,
} from '../test/helpers/openvpn.js';
import { median } from './stats.js';

const PORT = 30030;

interface Variant {
  name: string;
  /** Tuning directives (TUNING_DIRECTIVES) left out of the shipped server.conf. */
  drop: string[];
  server: string[];
}

const ALL = [...TUNING_DIRECTIVES];
const VARIANTS: Variant[] = [
  { name: 'openvpn defaults (baseline)', drop: ALL, server: [] },
  { name: 'as shipped', drop: [], server: [] },
  { name: 'socket buffers 4 MiB only (pushed)', drop: ['fast-io'], server: [] },
  { name: '--fast-io only', drop: ['sndbuf', 'rcvbuf'], server: [] },
  {
    name: 'as shipped, CHACHA20-POLY1305 preferred',
    drop: [],
    server: ['--data-ciphers', 'CHACHA20-POLY1305:AES-256-GCM:AES-128-GCM'],
  },
];

/** server.conf without the given tuning directives, nor their pushed forms (`push "sndbuf …"`). */
function withoutTuning(files: ServerFilesOut, drop: string[], name: string): ServerFilesOut {
  if (drop.length === 0) return files;
  const kept = readFileSync(files.configPath, 'utf8')
    .split('\n')
    .filter((line) => {
      const m = /^(?:push ")?([a-z-]+)/.exec(line.trim());
      return !(m && drop.includes(m[1]!));
    });
  const configPath = `${files.configPath}.${name}`;
  writeFileSync(configPath, kept.join('\n'), { mode: 0o600 });
  return { ...files, configPath };
}

export interface TunnelBenchResult {
  rounds: number;
  wireMbps: number;
  variants: { name: string; mbps: number; ratio: number }[];
}

/** One iperf3 run; retried a few times while the server side is still coming up (iperf3 says why). */
async function iperf(topo: Topology, to: string, seconds: number): Promise<number> {
  let why = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await topo.run('office', ['iperf3', '-c', to, '-t', String(seconds), '-J'], {
      timeoutMs: (seconds + 20) * 1000,
      check: false,
    });
    try {
      const j = JSON.parse(r.stdout) as {
        error?: string;
        end?: { sum_received?: { bits_per_second: number } };
      };
      if (j.end?.sum_received) return j.end.sum_received.bits_per_second / 1e6;
      why = j.error ?? 'no result';
    } catch {
      why = r.stderr || r.stdout;
    }
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`iperf3 to ${to}: ${why}`);
}

export async function runTunnelBench(
  o: { rounds?: number; seconds?: number } = {},
): Promise<TunnelBenchResult> {
  const rounds = o.rounds ?? Number(process.env.BENCH_TUNNEL_ROUNDS ?? 3);
  const seconds = o.seconds ?? Number(process.env.BENCH_TUNNEL_SECONDS ?? 4);
  if (!(await canUseNetns()))
    throw new Error('the tunnel bench needs root and iproute2 (network namespaces)');
  const topo = await officeNodePod({ prefix: 'pgn', clusterIp: false });
  const dir = makeServerDir('pg-bench-tun-');
  const procs: SpawnedProcess[] = [];
  try {
    await masqueradeClients(topo);
    procs.push(spawnIn(topo.name('pod'), ['iperf3', '-s']), spawnIn(topo.name('node'), ['iperf3', '-s']));
    await new Promise((r) => setTimeout(r, 300));
    const pki = await makeTestPki();
    const files = writeServerFiles(dir, pki, testVpnConfig({ port: PORT }));
    const { profile } = await testClientProfile(pki, 'bench.laptop', { port: PORT });
    const wire: number[] = [];
    const got: number[][] = VARIANTS.map(() => []);
    for (let r = 0; r < rounds; r++) {
      wire.push(await iperf(topo, A.node, seconds));
      for (const [i, v] of VARIANTS.entries()) {
        const server = startServer(topo.name('node'), withoutTuning(files, v.drop, `v${i}`), v.server);
        try {
          await waitServerReady(server);
          const client = startClient(topo.name('office'), dir, `c${r}-${i}`, profile);
          try {
            await waitClientConnected(client);
            got[i]!.push(await iperf(topo, A.pod, seconds));
          } finally {
            await client.stop();
          }
        } finally {
          await server.stop();
        }
      }
    }
    const base = median(got[0]!);
    const result: TunnelBenchResult = {
      rounds,
      wireMbps: median(wire),
      variants: VARIANTS.map((v, i) => ({
        name: v.name,
        mbps: median(got[i]!),
        ratio: median(got[i]!) / base,
      })),
    };
    print(result);
    return result;
  } finally {
    for (const p of procs) await p.stop().catch(() => undefined);
    await cleanupAll();
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

function print(r: TunnelBenchResult): void {
  console.log(`tunnel office -> pod, one TCP stream (iperf3), medians of ${r.rounds} interleaved rounds`);
  console.log(`veth without the tunnel (office -> node): ${r.wireMbps.toFixed(0)} Mbit/s`);
  for (const v of r.variants)
    console.log(
      `${v.name.padEnd(50)} ${v.mbps.toFixed(0).padStart(6)} Mbit/s  ${v.ratio.toFixed(2)}x openvpn defaults`,
    );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runTunnelBench();
