/**
 * Two `serve` replicas starting at once on an empty PostgreSQL database: both run ensureFirstAdmin.
 * Exactly one creates the admin; the other finds it, fails nothing and creates no second one. (SQLite
 * has one `serve` per data dir, and two connections of one process cannot overlap write transactions.)
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureFirstAdmin } from '../../../src/services/bootstrap.js';
import type { AppContext } from '../../../src/services/context.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';
import { sharedPostgres } from '../../helpers/pg-store.js';

describe('services (postgres): two replicas create the first admin at once', function () {
  this.timeout(120_000);
  let t: { dir: string; cleanup: () => void };
  const ctxs: AppContext[] = [];
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(async () => {
    for (const c of ctxs.splice(0)) await c.close();
    t.cleanup();
  });

  it('one admin, one creation returned, the other replica gets undefined', async () => {
    writeFileSync(join(t.dir, 'ca-passphrase'), 'first-admin-race-passphrase\n', { mode: 0o600 });
    writeFileSync(join(t.dir, 'admin-password'), 'First-Admin-Race-Pass-2026\n', { mode: 0o600 });
    const pg = await sharedPostgres();
    const database = await pg.createDatabase('firstadmin');
    for (const name of ['a', 'b'])
      ctxs.push(
        await testContext(join(t.dir, name), {
          dataDir: join(t.dir, name, 'data'),
          'store.url': pg.url(database),
          'store.passwordFile': pg.passwordFile,
          'ca.passphraseFile': join(t.dir, 'ca-passphrase'),
        }),
      );
    const env = { PODGATE_ADMIN_PASSWORD_FILE: join(t.dir, 'admin-password') };
    const results = await Promise.all(ctxs.map((c) => ensureFirstAdmin(c, env)));
    assert.equal(results.filter((r) => r !== undefined).length, 1, 'exactly one replica created it');
    const users = await ctxs[0]!.store.listUsers();
    assert.deepEqual(
      users.map((u) => `${u.name} ${u.role}`),
      ['admin admin'],
    );
    const audit = await ctxs[0]!.store.listAudit({ action: 'user.create', limit: 10 });
    assert.equal(audit.length, 1, 'one user.create in the audit');
    assert.ok(await ctxs[1]!.users.verifyPassword('admin', 'First-Admin-Race-Pass-2026'));
  });
});
