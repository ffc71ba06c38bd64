/**
 * The manager's side of access rules at scale: a data dir with U users (default 1,000), one real EC P-256
 * device each (so one tunnel address each), 20 local groups, and R rules (default 200) with group, user
 * and everyone subjects. Measures `AccessService.bundle()` (resolve every subject to addresses, in one
 * write transaction), `access apply` of the whole rules file, and one local publish (access.json).
 * Baselines in the same run: listing the valid certificates alone (what any bundle must read) and
 * JSON.stringify of the bundle. Prints; never fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { setLogLevel } from '../src/lib/logger.js';
import { LocalAccessPublisher } from '../src/openvpn/access-publisher.js';
import { openContext } from '../src/services/context.js';
import { median } from './stats.js';

export interface AccessBenchResult {
  users: number;
  rules: number;
  bundleMs: number;
  listCertsMs: number;
  stringifyMs: number;
  applyMs: number;
  publishMs: number;
  bundleBytes: number;
}

async function timed(fn: () => unknown | Promise<unknown>, runs = 5): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return Math.round(median(out) * 10) / 10;
}

export async function runAccessBench(o: { users?: number; rules?: number } = {}): Promise<AccessBenchResult> {
  const users = o.users ?? Number(process.env.BENCH_ACCESS_USERS ?? 1_000);
  const rules = o.rules ?? Number(process.env.BENCH_ACCESS_RULES ?? 200);
  setLogLevel('error');
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-access-'));
  try {
    const config = loadConfig({
      env: {},
      overrides: { dataDir: join(dir, 'data'), 'vpn.endpoints': ['172.18.12.21'], logLevel: 'silent' },
    });
    const ctx = await openContext(config);
    try {
      for (let g = 0; g < 20; g++) await ctx.groups.create({ actor: 'bench', name: `g${g}` });
      for (let u = 0; u < users; u++) {
        const name = `user${u}`;
        await ctx.users.create({ actor: 'bench', name, role: 'user' });
        await ctx.devices.issue({ actor: 'bench', owner: name, commonName: `${name}.laptop` });
        await ctx.groups.addMember({ actor: 'bench', group: `g${u % 20}`, user: name });
      }
      const doc = {
        rules: Array.from({ length: rules }, (_, i) => ({
          name: `rule-${i}`,
          subjects:
            i % 10 === 0
              ? [{ kind: 'everyone' }]
              : [
                  { kind: 'group', name: `g${i % 20}` },
                  { kind: 'user', name: `user${i}` },
                ],
          destinations: [
            { kind: 'namespace', names: [`ns-${i}`] },
            { kind: 'cidr', cidr: `10.${i % 250}.0.0/16` },
          ],
          protocol: 'tcp',
          ports: [{ from: 443, to: 443 }],
        })),
      };
      const applyMs = await timed(() => ctx.access.apply({ actor: 'bench', input: doc }), 1);
      const bundle = await ctx.access.bundle();
      const bundleMs = await timed(() => ctx.access.bundle());
      const listCertsMs = await timed(() => ctx.store.listCerts({ status: 'valid' }));
      const stringifyMs = await timed(() => JSON.stringify(bundle));
      const publisher = new LocalAccessPublisher(join(dir, 'pub'));
      const publishMs = await timed(async () => publisher.publish(bundle));
      return {
        users,
        rules,
        bundleMs,
        listCertsMs,
        stringifyMs,
        applyMs,
        publishMs,
        bundleBytes: Buffer.byteLength(JSON.stringify(bundle)),
      };
    } finally {
      await ctx.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printAccessBench(r: AccessBenchResult): void {
  const lines = [
    `access bundle: ${r.users} users with one device each, ${r.rules} rules (${(r.bundleBytes / 1024).toFixed(0)} KiB of JSON)`,
    `  bundle() median ${r.bundleMs} ms; baselines: listing the valid certificates ${r.listCertsMs} ms (bundle ${(r.bundleMs / Math.max(0.1, r.listCertsMs)).toFixed(1)}x), JSON.stringify ${r.stringifyMs} ms`,
    `  access apply of ${r.rules} rules in one transaction ${r.applyMs} ms; local publish (atomic write under a file lock) median ${r.publishMs} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runAccessBench().then(printAccessBench, (err: unknown) => {
    process.stderr.write(`access bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
