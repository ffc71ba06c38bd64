/**
 * devices.issuesPerHour counts issues that made a certificate: an issue that fails after it was admitted
 * (queue full, refused for the device maximum, key generation error) gives its slot back, in this
 * process's limit and in the limit replicas share through PostgreSQL (rate_events).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppContext } from '../../../src/services/context.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';
import { sharedPostgres } from '../../helpers/pg-store.js';

async function open(engine: 'postgres' | 'sqlite', dir: string, over: Record<string, unknown>) {
  if (engine === 'sqlite') return testContext(dir, over);
  const pg = await sharedPostgres();
  const database = await pg.createDatabase('issuefail');
  writeFileSync(join(dir, 'ca-passphrase'), 'issue-limit-failed-passphrase\n', { mode: 0o600 });
  return testContext(dir, {
    'store.url': pg.url(database),
    'store.passwordFile': pg.passwordFile,
    'ca.passphraseFile': join(dir, 'ca-passphrase'),
    ...over,
  });
}

for (const engine of ['postgres', 'sqlite'] as const) {
  describe(`services (${engine}): a failed issue gives its hourly slot back`, function () {
    this.timeout(120_000);
    let t: { dir: string; cleanup: () => void };
    let ctx: AppContext | undefined;
    beforeEach(() => {
      t = tempDir();
    });
    afterEach(async () => {
      await ctx?.close();
      ctx = undefined;
      t.cleanup();
    });

    const issue = (name: string) =>
      ctx!.devices.issue({
        actor: 'alice',
        owner: 'alice',
        commonName: name,
        keyType: 'ec-p256',
        selfService: true,
      });

    it('503 queue full: the next issue in the hour is still allowed, the one after it 429', async () => {
      ctx = await open(engine, t.dir, {
        'devices.issuesPerHour': 1,
        'devices.keygenConcurrency': 1,
        'devices.keygenQueue': 0,
      });
      await ctx.users.create({ actor: 'test', name: 'alice', role: 'user' });
      let unblock!: () => void;
      const blocker = ctx.devices.limits.keygen(false, () => new Promise<void>((go) => (unblock = go)));
      await assert.rejects(issue('alice-1'), { status: 503 });
      unblock();
      await blocker;
      assert.equal((await issue('alice-2')).cert.commonName, 'alice-2');
      await assert.rejects(issue('alice-3'), { status: 429 });
    });

    it('409 device maximum: the refused issue does not count', async () => {
      ctx = await open(engine, t.dir, { 'devices.issuesPerHour': 2, 'devices.maxValidPerUser': 1 });
      await ctx.users.create({ actor: 'test', name: 'alice', role: 'user' });
      await issue('alice-1');
      await assert.rejects(issue('alice-2'), { status: 409 });
      await ctx.revocation.revoke({ actor: 'test', serialOrName: 'alice-1', reason: 'keyCompromise' });
      assert.equal((await issue('alice-3')).cert.commonName, 'alice-3');
      await ctx.revocation.revoke({ actor: 'test', serialOrName: 'alice-3', reason: 'keyCompromise' });
      await assert.rejects(issue('alice-4'), { status: 429 });
    });
  });
}
