// What a replica on PostgreSQL pays before every issue and revoke to follow CA rotations elsewhere
// (`cas.sync()`), and a whole profile issue on PostgreSQL. Baselines in the same run: the query that
// sync ran before the shared-files version (names + md5 of every CA file), and a plain `SELECT 1`
// round trip. Run the same file on an older build for its own "before" figures.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { setLogLevel } from '../src/lib/logger.js';
import { openContext } from '../src/services/context.js';
import type { PgStore } from '../src/store/pg/pg-store.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { median, p95 } from './stats.js';

export interface CaSyncPgBenchResult {
  /** Median ms of one `cas.sync()` with nothing changed. */
  syncMs: number;
  /** Median ms of the old change check (names + md5 of every shared file). */
  md5StampMs: number;
  /** Median ms of `SELECT 1` on the pool (one round trip). */
  roundTripMs: number;
  /** Median and p95 ms of one EC P-256 profile issue. */
  issueMs: number;
  issueP95Ms: number;
}

async function times(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

export async function runCaSyncPgBench(): Promise<CaSyncPgBenchResult> {
  setLogLevel('error');
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-pg-'));
  try {
    const database = await pg.createDatabase('bench');
    writeFileSync(join(dir, 'ca-passphrase'), 'bench-passphrase-shared-by-replicas\n', { mode: 0o600 });
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: join(dir, 'data'),
        'store.url': pg.url(database),
        'store.passwordFile': pg.passwordFile,
        'ca.passphraseFile': join(dir, 'ca-passphrase'),
        'vpn.endpoints': ['172.18.12.21'],
        'vpn.routes.pods': ['10.244.0.0/16'],
      },
    });
    const ctx = await openContext(config);
    try {
      await ctx.users.create({ actor: 'bench', name: 'bench', role: 'user' });
      await ctx.server.ensure();
      const store = ctx.store as PgStore;
      const rounds = 400;
      // interleaved, so that load on the shared machine hits all three alike
      const sync: number[] = [];
      const md5: number[] = [];
      const trip: number[] = [];
      for (let i = 0; i < rounds; i++) {
        sync.push(...(await times(1, () => ctx.cas.sync())));
        md5.push(
          ...(await times(1, () =>
            store.withDb((db) => db.all('SELECT name, md5(content) AS h FROM shared_files ORDER BY name')),
          )),
        );
        trip.push(...(await times(1, () => store.withDb((db) => db.get('SELECT 1 AS x')))));
      }
      const issue = await times(100, (i) =>
        ctx.devices.issue({ actor: 'bench', owner: 'bench', commonName: `bench-${i}`, keyType: 'ec-p256' }),
      );
      return {
        syncMs: median(sync),
        md5StampMs: median(md5),
        roundTripMs: median(trip),
        issueMs: median(issue),
        issueP95Ms: p95(issue),
      };
    } finally {
      await ctx.close();
    }
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printCaSyncPgBench(r: CaSyncPgBenchResult): void {
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  console.log(`cas.sync() (nothing changed)       ${ms(r.syncMs)}`);
  console.log(
    `  old check: md5 of every CA file  ${ms(r.md5StampMs)} (${(r.md5StampMs / r.syncMs).toFixed(2)}x sync)`,
  );
  console.log(`  one round trip (SELECT 1)        ${ms(r.roundTripMs)}`);
  console.log(`profile issue on PostgreSQL        median ${ms(r.issueMs)}, p95 ${ms(r.issueP95Ms)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printCaSyncPgBench(await runCaSyncPgBench());
}
