// Web benchmark: the admin certificate table at 10,000 certificates under 50 concurrent clients
// (autocannon on loopback, bounded duration), 20 concurrent device creations, and the resident memory of
// the real `podgate serve` process afterwards. Baseline in the same run: /healthz under the same load.
// Targets (printed, never enforced): certificate list p95 <= 100 ms; RSS <= 200 MB.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { setLogLevel } from '../src/lib/logger.js';
import { startServe as startProcess } from '../test/helpers/serve.js';
import { openContext } from '../src/services/context.js';
import { SERVE_NODE_ARGS } from './serve-node-args.js';

interface AutocannonInstance {
  on(event: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): void;
}
type Autocannon = (
  opts: {
    url: string;
    connections: number;
    duration: number;
    headers?: Record<string, string>;
    requests?: { path: string }[];
  },
  cb: (
    err: Error | null,
    result: {
      requests: { total: number; average: number };
      non2xx: number;
      errors: number;
      timeouts: number;
    },
  ) => void,
) => AutocannonInstance;
// autocannon ships no types; load it through require with the small surface used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const PASSWORD = 'bench password 123';
const METRICS_TOKEN = 'bench-metrics-token-0123456789';
const CERTS = 10_000;

export interface LoadFigures {
  requests: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  non2xx: number;
  errors: number;
}

export interface WebBenchResult {
  healthz: LoadFigures;
  me: LoadFigures;
  certList: LoadFigures;
  certFilters: LoadFigures;
  certSearch: LoadFigures;
  creations: { count: number; ok: number; distinctSerials: number; p50: number; p95: number; max: number };
  rssMb: number;
  rssStartMb: number;
  heapStart: HeapFigures;
  /** After the list loads, before the 20 creations. */
  rssAfterListsMb: number;
  heapAfterLists: HeapFigures;
  heap: HeapFigures;
  /** Node options `serve` ran with (SERVE_NODE_ARGS unless BENCH_SERVE_NODE_ARGS says otherwise). */
  nodeArgs: string[];
}

interface HeapFigures {
  used: number;
  total: number;
  external: number;
}

/** Where the memory is, from the process's own metrics (V8 heap vs the rest: SQLite, buffers, code), MB. */
async function heapFigures(url: string): Promise<HeapFigures> {
  const metrics = await (
    await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  ).text();
  const metric = (name: string): number =>
    Number(new RegExp(`^${name} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN) / 1048576;
  return {
    used: metric('podgate_nodejs_heap_size_used_bytes'),
    total: metric('podgate_nodejs_heap_size_total_bytes'),
    external: metric('podgate_nodejs_external_memory_bytes'),
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((s.length * p) / 100) - 1)]!;
}

/** Runs autocannon for `seconds` with 50 connections and computes exact percentiles from every response. */
function load(
  url: string,
  headers: Record<string, string>,
  paths: string[],
  seconds: number,
): Promise<LoadFigures> {
  const times: number[] = [];
  return new Promise((resolve, reject) => {
    const inst = autocannon(
      { url, connections: 50, duration: seconds, headers, requests: paths.map((path) => ({ path })) },
      (err, r) => {
        if (err) return reject(err);
        resolve({
          requests: r.requests.total,
          rps: r.requests.average,
          p50: pct(times, 50),
          p95: pct(times, 95),
          p99: pct(times, 99),
          non2xx: r.non2xx,
          errors: r.errors + r.timeouts,
        });
      },
    );
    inst.on('response', (_c, _s, _b, ms) => times.push(ms));
  });
}

/** Builds a data dir with an admin, 200 users and 10,000 certificate rows (one real PEM reused). */
async function prepare(dataDir: string): Promise<void> {
  setLogLevel('error');
  const config = loadConfig({ env: {}, overrides: { dataDir, 'vpn.endpoints': ['vpn.example.test'] } });
  const ctx = await openContext(config);
  try {
    await ctx.users.create({ actor: 'bench', name: 'admin', role: 'admin', password: PASSWORD });
    const { cert } = await ctx.devices.issue({
      actor: 'bench',
      owner: 'admin',
      commonName: 'admin.template',
      deviceName: 'template',
    });
    const users: { id: number; name: string }[] = [];
    for (let u = 0; u < 200; u++)
      users.push(await ctx.store.createUser({ name: `user${u}`, role: 'user', passwordHash: null }));
    const now = Date.now();
    await ctx.store.transaction(async (tx) => {
      for (let i = 0; i < CERTS; i++) {
        const owner = users[i % users.length]!;
        const days = 1 + (i % 365);
        await tx.insertCert({
          serial: randomBytes(16)
            .toString('hex')
            .toUpperCase()
            .replace(/^[89A-F]/, '7'),
          commonName: `${owner.name}.device${i}`,
          ownerId: owner.id,
          deviceName: `device${i}`,
          kind: 'client',
          keyType: 'ec-p256',
          notBefore: new Date(now - 86_400_000),
          notAfter: new Date(now + days * 86_400_000),
          certPem: cert.certPem,
        });
      }
    });
  } finally {
    await ctx.close();
  }
}

/** Node options of `serve`: the image's (Dockerfile NODE_OPTIONS), or BENCH_SERVE_NODE_ARGS (e.g. to
 * profile: "--cpu-prof --cpu-prof-dir=DIR", or to compare heap sizing). */
function serveNodeArgs(): string[] {
  const given = process.env.BENCH_SERVE_NODE_ARGS;
  const args = given === undefined ? [...SERVE_NODE_ARGS] : given.split(' ').filter(Boolean);
  const snapshots = process.env.BENCH_HEAP_SNAPSHOT_DIR;
  return snapshots ? [...args, '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshots}`] : args;
}

function startServe(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  return startProcess({
    dataDir,
    nodeArgs: serveNodeArgs(),
    env: {
      PODGATE_LOG_LEVEL: 'warn',
      // /metrics is served on the public listener only with this token.
      PODGATE_WEB_METRICS_TOKEN_FILE: join(dataDir, '..', 'metrics-token'),
      // The 20 parallel creations below measure throughput, not the per-user limits (bench/issue-flood).
      PODGATE_DEVICES_MAX_VALID_PER_USER: '100',
      PODGATE_DEVICES_KEYGEN_QUEUE: '100',
    },
  });
}

/**
 * autocannon stops sending at the end of its duration, but requests it already sent may still be queued
 * in the server; wait until a probe is answered quickly so the next measurement starts clean.
 */
async function drain(url: string): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const t = performance.now();
    await fetch(`${url}/healthz`).then((r) => r.text());
    if (performance.now() - t < 20) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * With BENCH_HEAP_SNAPSHOT_DIR set, `serve` writes a V8 heap snapshot there after the load (open it in
 * Chrome DevTools, Memory tab): the bench adds `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR` to its
 * node options and waits for the file.
 */
async function heapSnapshot(child: ChildProcess): Promise<void> {
  const dir = process.env.BENCH_HEAP_SNAPSHOT_DIR;
  if (!dir) return;
  const before = new Set(readdirSync(dir));
  child.kill('SIGUSR2');
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    const made = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    // V8 writes the file in one go; its size stops changing when it is done
    if (made.length > 0) {
      const file = join(dir, made[0]!);
      const size = statSync(file).size;
      await new Promise((r) => setTimeout(r, 1000));
      if (statSync(file).size === size) {
        console.log(`heap snapshot after the load: ${file}`);
        return;
      }
    }
  }
  console.log('heap snapshot: none written within 120 s');
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

export async function runWebBench(opts: { seconds?: number } = {}): Promise<WebBenchResult> {
  const seconds = opts.seconds ?? 8;
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-web-'));
  let child: ChildProcess | undefined;
  try {
    const t0 = performance.now();
    await prepare(join(dir, 'data'));
    console.log(`prepared ${CERTS} certificates in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    writeFileSync(join(dir, 'metrics-token'), `${METRICS_TOKEN}\n`, { mode: 0o600 });
    const served = await startServe(join(dir, 'data'));
    child = served.child;
    const login = await fetch(`${served.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'admin', password: PASSWORD }),
    });
    const cookie = /podgate_sid=[^;]+/.exec(login.headers.get('set-cookie') ?? '')![0];
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const headers = { cookie };

    const rssStart = rssMb(child.pid!);
    const heapStart = await heapFigures(served.url);
    const healthz = await load(served.url, {}, ['/healthz'], seconds);
    await drain(served.url);
    // Session lookup + JSON, no certificate query: what the web layer itself costs per request.
    const me = await load(served.url, headers, ['/api/v1/me'], seconds);
    await drain(served.url);
    // The admin certificate list as it opens: page 1 in the default order, JSON and HTML.
    const certList = await load(served.url, headers, ['/api/v1/certs', '/admin/certs'], seconds);
    await drain(served.url);
    // Other sort orders, filters and search, first pages.
    const sortsAndFilters = [
      '/api/v1/certs?sort=notAfter&order=asc',
      '/api/v1/certs?sort=commonName&order=asc&page=2',
      '/api/v1/certs?sort=owner&order=asc',
      '/api/v1/certs?sort=status',
      '/api/v1/certs?status=valid&expiring=30',
      '/admin/certs?q=user17',
    ];
    const certFilters = await load(served.url, headers, sortsAndFilters, seconds);
    await drain(served.url);
    // Paging deep into the table (offsets up to 9,500) in every sort order.
    const deep = Array.from(
      { length: 20 },
      (_, i) =>
        `/api/v1/certs?page=${i * 10 + 1}&sort=${['createdAt', 'notAfter', 'commonName', 'status', 'owner'][i % 5]}&order=${i % 2 ? 'asc' : 'desc'}`,
    );
    const certSearch = await load(served.url, headers, deep, seconds);
    await drain(served.url);

    // memory after the list loads, before the creations (which compute the access bundle of every device)
    const rssAfterLists = rssMb(child.pid!);
    const heapAfterLists = await heapFigures(served.url);

    const times: number[] = [];
    const serials = new Set<string>();
    let ok = 0;
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const t = performance.now();
        const res = await fetch(`${served.url}/api/v1/devices`, {
          method: 'POST',
          headers: { cookie, 'x-csrf-token': csrfToken, 'content-type': 'application/json' },
          body: JSON.stringify({ name: `bench${i}` }),
        });
        const body = await res.text();
        times.push(performance.now() - t);
        if (res.status === 201 && body.includes('<cert>')) ok++;
        const serial = res.headers.get('x-certificate-serial');
        if (serial) serials.add(serial);
      }),
    );
    const creations = {
      count: 20,
      ok,
      distinctSerials: serials.size,
      p50: pct(times, 50),
      p95: pct(times, 95),
      max: Math.max(...times),
    };
    const rss = rssMb(child.pid!);
    const heap = await heapFigures(served.url);
    await heapSnapshot(child);
    const result: WebBenchResult = {
      healthz,
      me,
      certList,
      certFilters,
      certSearch,
      creations,
      rssMb: rss,
      rssStartMb: rssStart,
      heapStart,
      rssAfterListsMb: rssAfterLists,
      heapAfterLists,
      heap,
      nodeArgs: serveNodeArgs(),
    };
    print(result);
    return result;
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function line(name: string, f: LoadFigures): string {
  return `${name.padEnd(34)} ${String(f.requests).padStart(7)} req  ${f.rps.toFixed(0).padStart(6)} req/s  p50 ${f.p50.toFixed(1).padStart(6)} ms  p95 ${f.p95.toFixed(1).padStart(6)} ms  p99 ${f.p99.toFixed(1).padStart(6)} ms  non-2xx ${f.non2xx}  errors ${f.errors}`;
}

function print(r: WebBenchResult): void {
  console.log(`web app, 50 concurrent connections, ${CERTS} certificates in the store (loopback)`);
  console.log(line('GET /healthz (baseline)', r.healthz));
  console.log(line('GET /api/v1/me (session auth only)', r.me));
  console.log(
    line('cert list page 1 (API + HTML)', r.certList) +
      `  [target p95 <= 100 ms: ${r.certList.p95 <= 100 ? 'met' : 'MISSED'}]`,
  );
  console.log(line('cert list: other sorts, filters, search', r.certFilters));
  console.log(line('cert list: deep pages (offset <= 9500)', r.certSearch));
  console.log(
    `certificate list p95 / healthz p95 = ${(r.certList.p95 / Math.max(r.healthz.p95, 0.001)).toFixed(1)}x`,
  );
  const c = r.creations;
  console.log(
    `20 concurrent device creations: ${c.ok}/${c.count} succeeded, ${c.distinctSerials} distinct serials, p50 ${c.p50.toFixed(0)} ms, p95 ${c.p95.toFixed(0)} ms, max ${c.max.toFixed(0)} ms`,
  );
  console.log(
    `podgate serve resident memory: ${r.rssStartMb.toFixed(0)} MB at start, ${r.rssMb.toFixed(0)} MB after the load [target <= 200 MB: ${r.rssMb <= 200 ? 'met' : 'MISSED'}]`,
  );
  const h = (x: HeapFigures) =>
    `V8 heap ${x.used.toFixed(0)} MB used / ${x.total.toFixed(0)} MB reserved, external ${x.external.toFixed(0)} MB`;
  console.log(`  at start: ${h(r.heapStart)}`);
  console.log(`  after the list loads: RSS ${r.rssAfterListsMb.toFixed(0)} MB, ${h(r.heapAfterLists)}`);
  console.log(`  after the creations too: ${h(r.heap)}`);
  console.log(`  node options: ${r.nodeArgs.join(' ') || '(none)'}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runWebBench({ seconds: Number(process.env.BENCH_SECONDS ?? 8) });
}
