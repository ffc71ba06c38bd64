/**
 * Child process for test/integration/store/crash.test.ts: writes batches to a store until killed.
 * Usage: node store-crash-worker.js DB_FILE BATCH_SIZE
 *
 * Each batch is one transaction: BATCH_SIZE certificates (device name `batch-<n>`), the first of them
 * revoked, one audit row, and the `crash.next` setting bumped to n + 1. After COMMIT returns it prints
 * `<n>\n` on stdout: a printed number is a batch the store acknowledged as durable.
 * It resumes from `crash.next`, so the parent can kill and restart it several times on one file.
 */
import { SqliteStore } from '../../src/store/index.js';

const [file, sizeArg] = process.argv.slice(2);
if (!file || !sizeArg) {
  process.stderr.write('usage: store-crash-worker DB_FILE BATCH_SIZE\n');
  process.exit(2);
}
const size = Number(sizeArg);
const store = SqliteStore.open(file);
let batch = Number(store.getSetting('crash.next') ?? '0');
const year = 365 * 86_400_000;

for (;;) {
  const n = batch;
  store.transaction(() => {
    const serials: string[] = [];
    for (let i = 0; i < size; i++) {
      const serial = `C0${n.toString(16).toUpperCase().padStart(8, '0')}${i.toString(16).toUpperCase().padStart(4, '0')}`;
      const now = new Date();
      store.insertCert({
        serial,
        commonName: `b${n}-c${i}`,
        ownerId: null,
        deviceName: `batch-${n}`,
        kind: 'client',
        keyType: 'ec-p256',
        notBefore: now,
        notAfter: new Date(now.getTime() + year),
        certPem: `-----BEGIN CERTIFICATE-----\n${'A'.repeat(600)}\n-----END CERTIFICATE-----\n`,
      });
      serials.push(serial);
    }
    store.markRevoked(serials[0] as string, 'keyCompromise', new Date());
    store.appendAudit({
      actor: 'crash-worker',
      action: 'crash.batch',
      target: String(n),
      result: 'ok',
      details: { size },
    });
    store.setSetting('crash.next', String(n + 1));
  });
  // stdout to a pipe is synchronous on Linux: once this returns the parent can read the line
  process.stdout.write(`${n}\n`);
  batch = n + 1;
}
