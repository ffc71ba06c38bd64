/**
 * One openvpn process vs two, same machine, same clients (issue: `vpn.processesPerPod`, measure before
 * building). Four client namespaces, each with its own openvpn client, dial a "node" namespace; a "pod"
 * namespace runs four iperf3 servers. Variant 1: one openvpn server process takes all four clients.
 * Variant 2: two server processes (own port and half of the client subnet each, two clients each): what
 * two processes in one pod, or two one-process pods on one node, would give. Aggregate = the sum of four
 * parallel iperf3 TCP streams; single = one client alone through variant 1's server. Rounds interleave
 * the variants so load from elsewhere hits both alike; medians. Prints figures; never fails on a time.
 *
 *   c1..c4 (172.18.2N.2) ── node (172.18.2N.1; server(s) :30030 [:30031]) ── pod 10.244.1.5 (iperf3 ×4)
 */
import { rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { canUseNetns, cleanupAll, spawnIn, Topology, type SpawnedProcess } from '../test/helpers/netns.js';
import {
  clientProfile,
  clientTlsKey,
  makeServerDir,
  makeTestPki,
  startClient,
  startServer,
  testVpnConfig,
  waitClientConnected,
  waitServerReady,
  writeServerFiles,
  type TestPki,
} from '../test/helpers/openvpn.js';
import { median } from './stats.js';

const POD = '10.244.1.5';
const CLIENTS = 4;

export interface ProcessesBenchResult {
  rounds: number;
  seconds: number;
  cores: number;
  oneProcessMbps: number;
  twoProcessesMbps: number;
  ratio: number;
  singleStreamMbps: number;
}

/** One iperf3 client run from `ns` to the pod's server on `port`: Mbit/s received. */
async function iperf(topo: Topology, role: string, port: number, seconds: number): Promise<number> {
  let why = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await topo.run(role, ['iperf3', '-c', POD, '-p', String(port), '-t', String(seconds), '-J'], {
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
  throw new Error(`iperf3 from ${role}: ${why}`);
}

async function topology(): Promise<Topology> {
  const t = new Topology('pgsp');
  await t.link('node', '10.244.1.1/24', 'pod', `${POD}/24`);
  await t.route('pod', '10.244.0.0/16', '10.244.1.1');
  await t.forward('node');
  for (let i = 1; i <= CLIENTS; i++) await t.link(`c${i}`, `172.18.2${i}.2/24`, 'node', `172.18.2${i}.1/24`);
  await t.iptables('node', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '10.140.0.0/16', '-j', 'MASQUERADE']);
  return t;
}

/** Starts `ports.length` servers (each its own slice of 10.140.0.0/16), connects the clients round robin. */
async function withServers<T>(
  topo: Topology,
  pki: TestPki,
  dirs: string[],
  ports: number[],
  clients: number,
  f: () => Promise<T>,
): Promise<T> {
  const procs: SpawnedProcess[] = [];
  try {
    const subnets = ports.length === 1 ? ['10.140.0.0/16'] : ['10.140.0.0/17', '10.140.128.0/17'];
    for (const [i, port] of ports.entries()) {
      const files = writeServerFiles(dirs[i]!, pki, testVpnConfig({ port, clientSubnet: subnets[i] }));
      const server = startServer(topo.name('node'), files);
      procs.push(server);
      await waitServerReady(server);
    }
    for (let c = 1; c <= clients; c++) {
      const cn = `bench.c${c}`;
      const cert = await pki.issueClient(cn);
      const port = ports[(c - 1) % ports.length]!;
      const profile = clientProfile({
        remote: `172.18.2${c}.1`,
        port,
        cn,
        certPem: cert.certPem,
        keyPem: cert.keyPem,
        caPem: pki.caPem,
        tlsCryptV2KeyPem: clientTlsKey(pki),
      });
      const client = startClient(topo.name(`c${c}`), dirs[0]!, `${cn}-${port}-${Date.now()}`, profile);
      procs.push(client);
      await waitClientConnected(client);
    }
    return await f();
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => undefined);
  }
}

export async function runProcessesBench(
  o: { rounds?: number; seconds?: number } = {},
): Promise<ProcessesBenchResult> {
  const rounds = o.rounds ?? Number(process.env.BENCH_PROCESSES_ROUNDS ?? 3);
  const seconds = o.seconds ?? Number(process.env.BENCH_PROCESSES_SECONDS ?? 5);
  if (!(await canUseNetns())) throw new Error('the processes bench needs root and network namespaces');
  const topo = await topology();
  const dirs = [makeServerDir('pg-bench-proc-'), makeServerDir('pg-bench-proc-')];
  const iperfs: SpawnedProcess[] = [];
  try {
    for (let i = 0; i < CLIENTS; i++)
      iperfs.push(spawnIn(topo.name('pod'), ['iperf3', '-s', '-p', `${5201 + i}`]));
    await new Promise((r) => setTimeout(r, 300));
    const pki = await makeTestPki();
    const aggregate = () =>
      Promise.all(
        Array.from({ length: CLIENTS }, (_, i) => iperf(topo, `c${i + 1}`, 5201 + i, seconds)),
      ).then((xs) => xs.reduce((a, b) => a + b, 0));
    const one: number[] = [];
    const two: number[] = [];
    const single: number[] = [];
    for (let r = 0; r < rounds; r++) {
      single.push(await withServers(topo, pki, dirs, [30030], 1, () => iperf(topo, 'c1', 5201, seconds)));
      one.push(await withServers(topo, pki, dirs, [30030], CLIENTS, aggregate));
      two.push(await withServers(topo, pki, dirs, [30030, 30031], CLIENTS, aggregate));
    }
    const { availableParallelism } = await import('node:os');
    const result: ProcessesBenchResult = {
      rounds,
      seconds,
      cores: availableParallelism(),
      oneProcessMbps: median(one),
      twoProcessesMbps: median(two),
      ratio: median(two) / median(one),
      singleStreamMbps: median(single),
    };
    console.log(
      `openvpn server processes, ${CLIENTS} clients × 1 TCP stream (iperf3), medians of ${rounds} interleaved rounds of ${seconds} s, ${result.cores} cores (clients and servers share them)`,
    );
    console.log(`single stream, 1 process:        ${result.singleStreamMbps.toFixed(0)} Mbit/s`);
    console.log(`aggregate, 1 process:            ${result.oneProcessMbps.toFixed(0)} Mbit/s`);
    console.log(
      `aggregate, 2 processes:          ${result.twoProcessesMbps.toFixed(0)} Mbit/s  ${result.ratio.toFixed(2)}x one process`,
    );
    return result;
  } finally {
    for (const p of iperfs) await p.stop().catch(() => undefined);
    await cleanupAll();
    await topo.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runProcessesBench();
