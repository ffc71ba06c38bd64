// CRL size with expired certificates pruned: 10,000 revoked certificates of which half have expired,
// through the real path (SQLite rows, RevocationService re-sign). Baseline in the same run: the same
// same number of revoked rows with none expired (every revoked row listed, as before pruning existed).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config/load.js';
import { setLogLevel } from '../src/lib/logger.js';
import { openContext } from '../src/services/context.js';
import { verifyCrl } from '../src/pki/index.js';

const DAY = 86_400_000;

export interface CrlSizeResult {
  revoked: number;
  expired: number;
  prunedPemBytes: number;
  prunedEntries: number;
  fullPemBytes: number;
  fullEntries: number;
  resignMs: number;
}

/** n revoked rows, every `expiredEvery`-th one expired 30 days ago (0: none), then one re-sign. */
async function measure(
  n: number,
  expiredEvery: number,
): Promise<{ pem: string; ms: number; entries: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'pg-bench-crl-'));
  try {
    setLogLevel('error');
    const now = new Date();
    const t0 = now.getTime();
    const config = loadConfig({ env: {}, overrides: { dataDir: dir } });
    const ctx = await openContext(config, { now: () => now });
    try {
      const owner = await ctx.users.create({ actor: 'bench', name: 'bench', role: 'user' });
      ctx.store.transaction(async (tx) => {
        for (let i = 0; i < n; i++) {
          const serial = randomBytes(16)
            .toString('hex')
            .toUpperCase()
            .replace(/^[89A-F]/, '1');
          const expired = expiredEvery > 0 && i % expiredEvery === 0;
          const notAfter = new Date(expired ? t0 - 30 * DAY : t0 + 365 * DAY);
          tx.insertCert({
            serial,
            commonName: `dev${i}`,
            ownerId: owner.id,
            deviceName: `dev${i}`,
            kind: 'client',
            keyType: 'ec-p256',
            notBefore: new Date(notAfter.getTime() - 400 * DAY),
            notAfter,
            certPem: 'bench',
          });
          tx.markRevoked(serial, 'keyCompromise', new Date(t0 - 60 * DAY));
        }
      });
    } finally {
      ctx.close();
    }
    // Rows were written straight to the store, past RevocationService's cache: a fresh context reads them.
    const fresh = await openContext(config, { now: () => now });
    try {
      const start = performance.now();
      const crl = await fresh.revocation.resign('bench');
      const ms = performance.now() - start;
      const entries = verifyCrl(crl.pem, fresh.ca.certPem, now).revokedSerials.length;
      return { pem: crl.pem, ms, entries };
    } finally {
      fresh.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runCrlSizeBench(n = 10_000): Promise<CrlSizeResult> {
  // Half of the revoked certificates expired 30 days ago: they leave the CRL.
  const pruned = await measure(n, 2);
  // Baseline: the same number of revoked rows, none expired (what the CRL held before pruning: every row).
  const full = await measure(n, 0);
  return {
    revoked: n,
    expired: n / 2,
    prunedPemBytes: pruned.pem.length,
    prunedEntries: pruned.entries,
    fullPemBytes: full.pem.length,
    fullEntries: full.entries,
    resignMs: pruned.ms,
  };
}

export function printCrlSizeBench(r: CrlSizeResult): void {
  console.log(`revoked ${r.revoked}, expired ${r.expired}`);
  console.log(
    `CRL with expired pruned:  ${r.prunedEntries} entries, ${(r.prunedPemBytes / 1024).toFixed(1)} KiB PEM`,
  );
  console.log(
    `CRL listing every row:    ${r.fullEntries} entries, ${(r.fullPemBytes / 1024).toFixed(1)} KiB PEM`,
  );
  console.log(
    `ratio pruned/full: ${(r.prunedPemBytes / r.fullPemBytes).toFixed(2)}; re-sign ${r.resignMs.toFixed(0)} ms`,
  );
}
