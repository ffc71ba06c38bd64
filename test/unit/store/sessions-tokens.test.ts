import assert from 'node:assert/strict';
import { expectAppError, tempStore, type TempStore } from './temp-store.js';

const NOW = new Date('2026-06-01T00:00:00.000Z');
const later = (ms: number): Date => new Date(NOW.getTime() + ms);

describe('store: sessions', () => {
  let t: TempStore;
  let alice: number;
  let bob: number;
  beforeEach(async () => {
    t = tempStore();
    alice = (await t.store.createUser({ name: 'alice', role: 'user', passwordHash: null })).id;
    bob = (await t.store.createUser({ name: 'bob', role: 'user', passwordHash: null })).id;
  });
  afterEach(() => t.cleanup());

  it('sets, replaces and reads a session; expired sessions are invisible', async () => {
    await t.store.setSession('s1', '{"a":1}', later(60_000));
    assert.deepEqual(await t.store.getSession('s1', NOW), {
      data: '{"a":1}',
      expiresAt: later(60_000),
      userId: null,
    });
    await t.store.setSession('s1', '{"a":2}', later(120_000), alice);
    assert.deepEqual(await t.store.getSession('s1', NOW), {
      data: '{"a":2}',
      expiresAt: later(120_000),
      userId: alice,
    });
    assert.equal(await t.store.getSession('s1', later(120_000)), undefined);
    assert.equal(await t.store.getSession('nope', NOW), undefined);
  });

  it('destroys one session, all sessions of a user, and prunes expired ones', async () => {
    await t.store.setSession('a1', 'x', later(1000), alice);
    await t.store.setSession('a2', 'x', later(1000), alice);
    await t.store.setSession('b1', 'x', later(1000), bob);
    await t.store.setSession('anon', 'x', later(10), null);
    await t.store.destroySession('b1');
    await t.store.destroySession('b1'); // idempotent
    assert.equal(await t.store.getSession('b1', NOW), undefined);
    assert.equal(await t.store.destroySessionsOfUser(alice), 2);
    assert.equal(await t.store.getSession('a1', NOW), undefined);
    await t.store.setSession('b2', 'x', later(1000), bob);
    assert.equal(await t.store.pruneSessions(later(500)), 1);
    assert.equal((await t.store.getSession('b2', NOW))?.userId, bob);
  });

  it('400 session for an unknown user', async () => {
    await expectAppError(() => t.store.setSession('s', 'x', later(1000), 999), 'BadRequest', 'userId');
  });
});

describe('store: API tokens', () => {
  let t: TempStore;
  let alice: number;
  beforeEach(async () => {
    t = tempStore();
    alice = (await t.store.createUser({ name: 'alice', role: 'user', passwordHash: null })).id;
  });
  afterEach(() => t.cleanup());

  it('creates, finds by hash, lists, touches and deletes tokens', async () => {
    const a = await t.store.createToken({ userId: alice, name: 'ci', tokenHash: 'h'.repeat(64) });
    const b = await t.store.createToken({ userId: alice, name: 'laptop', tokenHash: 'g'.repeat(64) });
    assert.deepEqual(await t.store.findTokenByHash('h'.repeat(64)), a);
    assert.equal(await t.store.findTokenByHash('nope'), undefined);
    assert.deepEqual(await t.store.listTokens(alice), [a, b]);
    const at = new Date('2026-06-02T00:00:00.000Z');
    await t.store.touchToken(a.id, at);
    assert.deepEqual((await t.store.findTokenByHash('h'.repeat(64)))?.lastUsedAt, at);
    await t.store.deleteToken(a.id);
    assert.deepEqual(await t.store.listTokens(alice), [b]);
    await expectAppError(async () => t.store.deleteToken(a.id), 'NotFound');
  });

  it('never hands the stored hash back out', async () => {
    const tok = await t.store.createToken({ userId: alice, name: 'ci', tokenHash: 'h'.repeat(64) });
    assert.ok(!JSON.stringify(tok).includes('h'.repeat(64)));
    assert.ok(!JSON.stringify(await t.store.listTokens(alice)).includes('h'.repeat(64)));
  });

  it('409 duplicate hash, 400 unknown user', async () => {
    await t.store.createToken({ userId: alice, name: 'ci', tokenHash: 'h1' });
    await expectAppError(
      () => t.store.createToken({ userId: alice, name: 'x', tokenHash: 'h1' }),
      'Conflict',
      'tokenHash',
    );
    await expectAppError(
      () => t.store.createToken({ userId: 999, name: 'x', tokenHash: 'h2' }),
      'BadRequest',
      'userId',
    );
    assert.equal((await t.store.listTokens(alice)).length, 1);
  });
});
