/**
 * Child process for test/integration/store/crash.test.ts: writes batches to a store until killed.
 * Usage: node store-crash-worker.js DB_FILE BATCH_SIZE [TAG]
 *
 * Each batch is one transaction: BATCH_SIZE certificates (device name `batch-<TAG>-<n>`), the first of
 * them revoked, one audit row (target `<TAG>-<n>`), and the `crash.next.<TAG>` setting bumped to n + 1.
 * After COMMIT returns it prints `<n>\n` on stdout: a printed number is a batch the store acknowledged.
 * It resumes from its setting, so the parent can kill and restart it several times on one file; workers
 * with different TAGs (one hex digit, default 0) can write to the same file at the same time.
 */
import { SqliteStore } from '../../src/store/index.js';

const [file, sizeArg, tag = '0'] = process.argv.slice(2);
if (!file || !sizeArg || !/^[0-9A-F]$/.test(tag)) {
  process.stderr.write('usage: store-crash-worker DB_FILE BATCH_SIZE [TAG: one hex digit]\n');
  process.exit(2);
}
const counterKey = `crash.next.${tag}`;
const size = Number(sizeArg);
const store = SqliteStore.open(file);
let batch = Number(store.getSetting(counterKey) ?? '0');
const year = 365 * 86_400_000;

for (;;) {
  const n = batch;
  store.transaction(async (tx) => {
    const serials: string[] = [];
    for (let i = 0; i < size; i++) {
      const serial = `C${tag}${n.toString(16).toUpperCase().padStart(8, '0')}${i.toString(16).toUpperCase().padStart(4, '0')}`;
      const now = new Date();
      tx.insertCert({
        serial,
        commonName: `t${tag}-b${n}-c${i}`,
        ownerId: null,
        deviceName: `batch-${tag}-${n}`,
        kind: 'client',
        keyType: 'ec-p256',
        notBefore: now,
        notAfter: new Date(now.getTime() + year),
        certPem: `-----BEGIN CERTIFICATE-----\n${'A'.repeat(600)}\n-----END CERTIFICATE-----\n`,
      });
      serials.push(serial);
    }
    tx.markRevoked(serials[0] as string, 'keyCompromise', new Date());
    tx.appendAudit({
      actor: 'crash-worker',
      action: 'crash.batch',
      target: `${tag}-${n}`,
      result: 'ok',
      details: { size },
    });
    tx.setSetting(counterKey, String(n + 1));
  });
  // stdout to a pipe is synchronous on Linux: once this returns the parent can read the line
  process.stdout.write(`${n}\n`);
  batch = n + 1;
}
