/**
 * Child process for test/unit/access/addresses.test.ts: allocates tunnel addresses in a store file while
 * another process does the same. Usage: node address-worker.js DB_FILE TAG COUNT SUBNET
 * Prints one line `<commonName> <address>` per allocation, or `409 <message>` when the pool is full.
 */
import { SqliteStore } from '../../src/store/index.js';
import { addressPool } from '../../src/services/addresses.js';
import { AppError } from '../../src/lib/errors.js';

const [file, tag, countArg, subnet] = process.argv.slice(2);
if (!file || !tag || !countArg || !subnet) {
  process.stderr.write('usage: address-worker DB_FILE TAG COUNT SUBNET\n');
  process.exit(2);
}
const store = SqliteStore.open(file);
const pool = addressPool(subnet);
const out: string[] = [];
for (let i = 0; i < Number(countArg); i++) {
  const cn = `${tag}-${i}`;
  try {
    out.push(`${cn} ${(await store.allocateAddress(cn, pool, new Date())).address}`);
  } catch (err) {
    if (!(err instanceof AppError) || err.status !== 409) throw err;
    out.push(`409 ${err.message}`);
  }
}
await store.close();
process.stdout.write(out.join('\n') + '\n');
