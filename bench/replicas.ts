// Profile issue throughput and latency through the real `podgate serve` on loopback, in one run:
// SQLite with one replica (the baseline), PostgreSQL (Debian's server, started here by initdb/pg_ctl)
// with one and with two replicas sharing the database. Each setup gets the same load: ISSUES profile
// creates (POST /api/v1/devices, ec-p256) with CONCURRENCY in flight, spread round-robin over the
// replicas. Printed: issues/s, p50 and p95 per request, and the ratios against the SQLite baseline.
// Figures are printed, never enforced. Run: npm run build && node dist/bench/replicas.js
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../test/helpers/cli.js';
import { startPostgres, type PgServer } from '../test/helpers/postgres.js';
import { startServe, type Serving } from '../test/helpers/serve.js';

const ISSUES = Number(process.env.PODGATE_BENCH_ISSUES ?? 120);
const CONCURRENCY = 8;

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

export interface ReplicaRow {
  name: string;
  perSecond: number;
  p50: number;
  p95: number;
  failed: number;
}

async function load(serves: Serving[], token: string, tag: string): Promise<Omit<ReplicaRow, 'name'>> {
  const times: number[] = [];
  let failed = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < ISSUES) {
        const i = next++;
        const t = performance.now();
        const res = await fetch(`${serves[i % serves.length]!.url}/api/v1/devices`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json',
          },
          body: JSON.stringify({ name: `${tag}-${i}`, keyType: 'ec-p256' }),
        });
        await res.arrayBuffer();
        if (res.status === 201) times.push(performance.now() - t);
        else failed++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: times.length / seconds, p50: pct(times, 50), p95: pct(times, 95), failed };
}

async function setup(
  name: string,
  dir: string,
  replicas: number,
  env: NodeJS.ProcessEnv,
): Promise<ReplicaRow> {
  const serves: Serving[] = [];
  try {
    for (let i = 0; i < replicas; i++)
      serves.push(await startServe({ dataDir: join(dir, `${name}-${i}`), env }));
    const tok = await runCli(
      ['token', 'create', 'admin', '--json', '--data-dir', join(dir, `${name}-0`)],
      env,
    );
    if (tok.code !== 0) throw new Error(`token create: ${tok.stderr}`);
    const token = (JSON.parse(tok.stdout) as { token: string }).token;
    await load(serves, token, `${name}-warm`); // warm-up: JIT, pools, caches; not counted
    return { name, ...(await load(serves, token, name)) };
  } finally {
    await Promise.all(serves.map((s) => s.stop()));
  }
}

export async function runReplicasBench(): Promise<ReplicaRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-replicas-'));
  let pg: PgServer | undefined;
  try {
    writeFileSync(join(dir, 'ca-passphrase'), 'bench-replicas-ca-passphrase\n', { mode: 0o600 });
    writeFileSync(join(dir, 'admin-password'), 'Bench-Replicas-Admin-2026\n', { mode: 0o600 });
    const common = {
      PODGATE_CA_PASSPHRASE_FILE: join(dir, 'ca-passphrase'),
      PODGATE_ADMIN_PASSWORD_FILE: join(dir, 'admin-password'),
      PODGATE_DEVICES_ISSUES_PER_HOUR: '100000',
      PODGATE_DEVICES_MAX_VALID_PER_USER: '10000',
      PODGATE_DEVICES_KEYGEN_QUEUE: '1000',
      PODGATE_DEVICES_KEYGEN_CONCURRENCY: '2',
      PODGATE_LOG_LEVEL: 'error',
      PGPASSWORD: '',
    };
    const rows: ReplicaRow[] = [];
    rows.push(await setup('sqlite-1', dir, 1, common));
    pg = await startPostgres();
    for (const replicas of [1, 2]) {
      const database = await pg.createDatabase(`bench${replicas}`);
      const env = {
        ...common,
        PODGATE_STORE_URL: pg.url(database),
        PODGATE_STORE_PASSWORD_FILE: pg.passwordFile,
      };
      rows.push(await setup(`postgres-${replicas}`, dir, replicas, env));
    }
    return rows;
  } finally {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printReplicasBench(rows: ReplicaRow[]): void {
  const base = rows.find((r) => r.name === 'sqlite-1');
  console.log(
    `profile issues (ec-p256), ${ISSUES} per setup, ${CONCURRENCY} in flight, real serve on loopback:`,
  );
  for (const r of rows) {
    const ratio = base
      ? ` (${(r.perSecond / base.perSecond).toFixed(2)}x SQLite's rate, p95 ${(r.p95 / base.p95).toFixed(2)}x)`
      : '';
    console.log(
      `  ${r.name.padEnd(11)} ${r.perSecond.toFixed(1)} issues/s, p50 ${r.p50.toFixed(0)} ms, p95 ${r.p95.toFixed(0)} ms` +
        `${r.failed ? `, ${r.failed} failed` : ''}${ratio}`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printReplicasBench(await runReplicasBench());
