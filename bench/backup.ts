/**
 * Backup and restore at scale: a data dir with N certificates (default 10,000; real EC P-256
 * certificates from podgate's CA, 10 % revoked, CRL signed), then `createBackup` and `restoreBackup`
 * (the code behind `podgate backup` / `podgate restore`) three times each. Baselines in the same run:
 * copying the same files with the file system (cpSync) and SQLite's backup alone. Prints; never fails.
 */
import { cpSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { setLogLevel } from '../src/lib/logger.js';
import { createBackup, restoreBackup } from '../src/services/backup.js';
import { openContext } from '../src/services/context.js';
import { backupDatabase } from '../src/store/backup.js';
import { median } from './stats.js';

const PASS = 'benchmark backup passphrase';

export interface BackupBenchResult {
  certificates: number;
  dbBytes: number;
  backupBytes: number;
  backupMs: number;
  restoreMs: number;
  copyMs: number;
  sqliteBackupMs: number;
}

async function timed(fn: () => unknown | Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return Math.round(performance.now() - t0);
}

export async function runBackupBench(o: { certificates?: number } = {}): Promise<BackupBenchResult> {
  const n = o.certificates ?? Number(process.env.BENCH_BACKUP_CERTS ?? 10_000);
  setLogLevel('error');
  const work = mkdtempSync(join(tmpdir(), 'pg-bench-backup-'));
  try {
    const dataDir = join(work, 'data');
    const config = loadConfig({
      env: {},
      overrides: { dataDir, 'ca.keyType': 'ec-p384', logLevel: 'silent' },
    });
    const ctx = await openContext(config);
    try {
      const owner = await ctx.users.create({ actor: 'bench', name: 'bench', role: 'user' });
      const issued: string[] = [];
      for (let done = 0; done < n;) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(500, n - done) }, (_, i) =>
            ctx.ca.issue({ kind: 'client', commonName: `bench-${done + i}`, keyType: 'ec-p256', days: 365 }),
          ),
        );
        await ctx.store.transaction(async (tx) => {
          for (const [i, c] of batch.entries()) {
            await tx.insertCert({
              serial: c.serial,
              commonName: `bench-${done + i}`,
              ownerId: owner.id,
              deviceName: `bench-${done + i}`,
              kind: 'client',
              keyType: c.keyType,
              notBefore: c.notBefore,
              notAfter: c.notAfter,
              certPem: c.certPem,
            });
            issued.push(c.serial);
          }
        });
        done += batch.length;
      }
      await ctx.revocation.revokeMany({
        actor: 'bench',
        serials: issued.filter((_, i) => i % 10 === 0),
        reason: 'superseded',
      });
    } finally {
      await ctx.close();
    }

    const backupMs: number[] = [];
    const restoreMs: number[] = [];
    const copyMs: number[] = [];
    const sqliteMs: number[] = [];
    let made: Awaited<ReturnType<typeof createBackup>> | undefined;
    for (let i = 0; i < 3; i++) {
      copyMs.push(await timed(() => cpSync(dataDir, join(work, `copy-${i}`), { recursive: true })));
      sqliteMs.push(
        await timed(() => backupDatabase(join(dataDir, 'podgate.db'), join(work, `sqlite-${i}.db`))),
      );
      backupMs.push(await timed(async () => (made = await createBackup({ dataDir, passphrase: PASS }))));
      restoreMs.push(
        await timed(() =>
          restoreBackup({
            file: made!.data,
            passphrase: PASS,
            dataDir: join(work, `restored-${i}`),
            config,
            actor: 'bench',
          }),
        ),
      );
    }
    return {
      certificates: made!.info.certificates,
      dbBytes: statSync(join(dataDir, 'podgate.db')).size,
      backupBytes: made!.data.length,
      backupMs: median(backupMs),
      restoreMs: median(restoreMs),
      copyMs: median(copyMs),
      sqliteBackupMs: median(sqliteMs),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function printBackupBench(r: BackupBenchResult): void {
  const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
  const lines = [
    `backup/restore of a data dir with ${r.certificates} certificates (database ${mb(r.dbBytes)} MiB)`,
    `  podgate backup:  median ${r.backupMs} ms, file ${mb(r.backupBytes)} MiB (${((100 * r.backupBytes) / r.dbBytes).toFixed(0)} % of the database)`,
    `  podgate restore: median ${r.restoreMs} ms (authenticate, checksums, integrity_check, CA key check, migrate, rename)`,
    `  baselines: cp -r of the data dir ${r.copyMs} ms (backup ${(r.backupMs / Math.max(1, r.copyMs)).toFixed(1)}x), SQLite backup API alone ${r.sqliteBackupMs} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runBackupBench().then(printBackupBench, (err: unknown) => {
    process.stderr.write(`backup bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
