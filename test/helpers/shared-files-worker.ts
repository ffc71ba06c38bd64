/**
 * Child process for test/integration/store/pg-shared-files.test.ts: another replica pushing its CA
 * files. Usage: node shared-files-worker.js DIR, with the store target as JSON on standard input
 * (it carries the password). Prints the names it pushed, one a line.
 */
import { readFileSync } from 'node:fs';
import { SHARED_CA_FILES } from '../../src/services/ca-files.js';
import { PgStore } from '../../src/store/pg/pg-store.js';
import { pushSharedFiles } from '../../src/store/pg/shared-files.js';
import type { PgTarget } from './pg-store.js';

const [dir] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: shared-files-worker DIR < target.json\n');
  process.exit(2);
}
const target = JSON.parse(readFileSync(0, 'utf8')) as PgTarget;
const store = await PgStore.open(target);
try {
  const pushed = await store.withDb((db) => pushSharedFiles(db, dir, SHARED_CA_FILES));
  process.stdout.write(pushed.map((n) => `${n}\n`).join(''));
} finally {
  await store.close();
}
