/**
 * Child process for the torture test (test/integration/torture/torture.test.ts): a writer doing what
 * `serve` does, on the real services and a real data dir, until the parent SIGKILLs it.
 * Usage: node torture-worker.js DIR SEED [OVERRIDES_JSON]
 * OVERRIDES_JSON: dotted config paths for testContext, e.g. a PostgreSQL `store.url` and this writer's
 * own `dataDir` (replicas on PostgreSQL share the database, each has its own data dir). On PostgreSQL
 * the backups are `createStoreBackup`'s (rows read in one snapshot), else the data dir's.
 *
 * Every line on stdout is an acknowledgement, written only after the operation returned:
 *   ready                  context open (CA loaded, store migrated, bundle republished)
 *   issued SERIAL          a profile was handed to the caller (it "reached a client")
 *   revoked SERIAL N       revoke() returned: the revocation was acknowledged, in CRL number N
 *   published N            the bundle with CRL number N was written to <dataDir>/server
 *   backup FILE            a backup was written (atomically) to FILE
 * stdout to a pipe is synchronous on Linux, so once a line is written the parent can read it even if
 * the process is killed right after.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/lib/fs-atomic.js';
import { LocalCrlPublisher, serverDir } from '../../src/openvpn/local-publisher.js';
import { createBackup } from '../../src/services/backup.js';
import { createStoreBackup } from '../../src/services/store-backup.js';
import { testContext } from './context.js';

const [dir, seedArg, overridesArg] = process.argv.slice(2);
if (!dir || !seedArg) {
  process.stderr.write('usage: torture-worker DIR SEED\n');
  process.exit(2);
}
/** mulberry32: a seeded generator, so a failing round can be replayed with its seed. */
let seed = Number(seedArg) >>> 0;
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const say = (line: string) => process.stdout.write(`${line}\n`);

const overrides = (overridesArg ? JSON.parse(overridesArg) : {}) as Record<string, unknown>;
const dataDir = typeof overrides.dataDir === 'string' ? overrides.dataDir : join(dir, 'data');
const onPg = typeof overrides['store.url'] === 'string';
const publisher = new LocalCrlPublisher(serverDir(dataDir));
const ctx = await testContext(dir, overrides, { publishers: [publisher] });
if (!(await ctx.store.getUserByName('tess')))
  await ctx.users.create({ actor: 'torture', name: 'tess', role: 'user' });
// like `server run` at start: whatever a killed predecessor left half-published is published again
await ctx.revocation.publish();
say('ready');
const backups = join(dir, 'backups');
mkdirSync(backups, { recursive: true });

for (let i = 0; ; i++) {
  const r = random();
  if (r < 0.5) {
    const name = `t-${seedArg}-${i}`;
    const { cert } = await ctx.devices.issue({ actor: 'torture', owner: 'tess', commonName: name });
    say(`issued ${cert.serial}`);
  } else if (r < 0.75) {
    const { items } = await ctx.store.listCerts({
      status: 'valid',
      ownerId: (await ctx.store.getUserByName('tess'))!.id,
      limit: 50,
    });
    const victim = items[Math.floor(random() * items.length)];
    if (!victim) continue;
    let crl: { number: number };
    try {
      ({ crl } = await ctx.revocation.revoke({
        actor: 'torture',
        serialOrName: victim.serial,
        reason: 'keyCompromise',
      }));
    } catch (err) {
      // a CLI writer running beside this one revoked it first
      if ((err as { status?: number }).status === 409) continue;
      throw err;
    }
    say(`revoked ${victim.serial} ${crl.number}`);
  } else if (r < 0.85) {
    await ctx.revocation.publish();
    say(`published ${(await ctx.store.getCrl())!.number}`);
  } else {
    const made = onPg
      ? await createStoreBackup({ config: ctx.config, dataDir, passphrase: 'torture passphrase' })
      : await createBackup({ dataDir, passphrase: 'torture passphrase', exclude: [backups] });
    const file = join(backups, `b-${seedArg}-${i}.pgbackup`);
    writeFileAtomic(file, made.data, 0o600);
    say(`backup ${file}`);
  }
}
