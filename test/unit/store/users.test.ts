import assert from 'node:assert/strict';
import { expectAppError, tempStore, type TempStore } from './temp-store.js';

describe('store: users', () => {
  let t: TempStore;
  beforeEach(() => {
    t = tempStore();
  });
  afterEach(() => t.cleanup());

  it('creates a user and reads it back by name and id', async () => {
    const u = await t.store.createUser({ name: 'alice', role: 'admin', passwordHash: '$argon2id$v=19$x' });
    assert.ok(u.id > 0);
    assert.equal(u.disabled, false);
    assert.ok(u.createdAt instanceof Date && !Number.isNaN(u.createdAt.getTime()));
    assert.deepEqual(await t.store.getUserByName('alice'), u);
    assert.deepEqual(await t.store.getUserById(u.id), u);
    assert.equal(await t.store.getUserByName('bob'), undefined);
    assert.equal(await t.store.getUserById(9999), undefined);
  });

  it('409 duplicate user name, nothing added', async () => {
    await t.store.createUser({ name: 'alice', role: 'user', passwordHash: null });
    const e = expectAppError(
      () => t.store.createUser({ name: 'alice', role: 'admin', passwordHash: null }),
      'Conflict',
      'name',
    );
    assert.match((await e).message, /alice/);
    assert.equal((await t.store.listUsers()).length, 1);
  });

  it('400 unknown role names the field', async () => {
    await expectAppError(
      () => t.store.createUser({ name: 'x', role: 'root' as 'admin', passwordHash: null }),
      'BadRequest',
      'role',
    );
    assert.equal((await t.store.listUsers()).length, 0);
  });

  it('lists users sorted by name', async () => {
    for (const name of ['carol', 'alice', 'bob'])
      await t.store.createUser({ name, role: 'user', passwordHash: null });
    assert.deepEqual(
      (await t.store.listUsers()).map((u) => u.name),
      ['alice', 'bob', 'carol'],
    );
  });

  it('updates role, password hash and disabled; leaves unspecified fields alone', async () => {
    const u = await t.store.createUser({ name: 'alice', role: 'user', passwordHash: 'h1' });
    const a = await t.store.updateUser(u.id, { role: 'admin' });
    assert.equal(a.role, 'admin');
    assert.equal(a.passwordHash, 'h1');
    const b = await t.store.updateUser(u.id, { disabled: true, passwordHash: 'h2' });
    assert.equal(b.disabled, true);
    assert.equal(b.passwordHash, 'h2');
    assert.equal(b.role, 'admin');
    const c = await t.store.updateUser(u.id, { passwordHash: null });
    assert.equal(c.passwordHash, null);
    assert.equal(c.disabled, true);
    assert.deepEqual(await t.store.getUserById(u.id), c);
  });

  it('404 updating an unknown user', async () => {
    await expectAppError(() => t.store.updateUser(4242, { role: 'admin' }), 'NotFound');
  });
});
