// Tunnel address backfill at start-up: N devices without an address, given one each by the old path
// (one allocateAddress per device in one transaction, each re-reading every taken address) and by
// allocateAddresses (one pass), on a SQLite file, both in the same run. Prints times and the ratio;
// never fails on a time. `node dist/bench/address-backfill.js [N...]` (default 2000 5000).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressPool } from '../src/services/addresses.js';
import { SqliteStore } from '../src/store/index.js';

async function timeOne(n: number, bulk: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-backfill-'));
  const store = SqliteStore.open(join(dir, 'podgate.db'));
  try {
    const pool = addressPool('10.140.0.0/16');
    const names = Array.from({ length: n }, (_, i) => `dev-${i}`);
    const at = new Date();
    const t = performance.now();
    if (bulk) await store.allocateAddresses(names, pool, at);
    else
      await store.transaction(async (tx) => {
        for (const cn of names) await tx.allocateAddress(cn, pool, at);
      });
    const ms = performance.now() - t;
    if ((await store.listAddresses()).length !== n) throw new Error('not every device got an address');
    return ms;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sizes = process.argv.slice(2).map(Number);
for (const n of sizes.length > 0 ? sizes : [2000, 5000]) {
  const oneByOne = await timeOne(n, false);
  const onePass = await timeOne(n, true);
  console.log(
    `${n} devices: one by one ${oneByOne.toFixed(0)} ms, one pass ${onePass.toFixed(1)} ms (${(oneByOne / onePass).toFixed(0)}x)`,
  );
}
