import assert from 'node:assert/strict';
import type { CertQuery } from '../../../src/store/index.js';
import { expectAppError, newCert, tempStore, type TempStore } from './temp-store.js';

const NOW = new Date('2026-06-01T00:00:00.000Z');
const day = (n: number): Date => new Date(NOW.getTime() + n * 86_400_000);

describe('store: listCerts', () => {
  let t: TempStore;
  const cn = async (q: CertQuery): Promise<string[]> =>
    (await t.store.listCerts(q)).items.map((c) => c.commonName);

  beforeEach(async () => {
    t = tempStore();
    const alice = (await t.store.createUser({ name: 'alice', role: 'user', passwordHash: null })).id;
    const bob = (await t.store.createUser({ name: 'bob_smith', role: 'user', passwordHash: null })).id;
    await t.store.insertCert(
      newCert({ commonName: 'alice-laptop', deviceName: 'ThinkPad', ownerId: alice, notAfter: day(5) }),
    );
    await t.store.insertCert(
      newCert({ commonName: 'alice-phone', deviceName: 'phone', ownerId: alice, notAfter: day(40) }),
    );
    await t.store.insertCert(
      newCert({ commonName: 'bob-desk', deviceName: '100%_desk', ownerId: bob, notAfter: day(10) }),
    );
    await t.store.insertCert(
      newCert({ commonName: 'server', deviceName: '', kind: 'server', notAfter: day(700) }),
    );
    await t.store.insertCert(
      newCert({ commonName: 'office-gw', deviceName: 'gw', kind: 'gateway', notAfter: day(-1) }),
    );
    const old = await t.store.insertCert(
      newCert({ commonName: 'carol-old', deviceName: 'old', notAfter: day(3) }),
    );
    await t.store.markRevoked(old.serial, 'superseded', NOW);
  });
  afterEach(() => t.cleanup());

  it('no query returns everything with the total', async () => {
    const r = await t.store.listCerts();
    assert.equal(r.total, 6);
    assert.equal(r.items.length, 6);
  });

  it('search matches common name, device name and owner name, case-insensitively', async () => {
    assert.deepEqual(await cn({ search: 'ALICE', sort: 'commonName' }), ['alice-laptop', 'alice-phone']);
    assert.deepEqual(await cn({ search: 'thinkpad' }), ['alice-laptop']);
    assert.deepEqual(await cn({ search: 'smith' }), ['bob-desk']);
    assert.deepEqual(await cn({ search: 'nothing-like-this' }), []);
  });

  it('% and _ in search are literal characters, not wildcards', async () => {
    assert.deepEqual(await cn({ search: '%' }), ['bob-desk']);
    assert.deepEqual(await cn({ search: '_' }), ['bob-desk']); // only bob_smith / 100%_desk contain "_"
    assert.deepEqual(await cn({ search: '%_' }), ['bob-desk']);
    assert.deepEqual(await cn({ search: 'a%e' }), []);
    assert.deepEqual(await cn({ search: 'alice_laptop' }), []); // "_" must not match "-"
    assert.deepEqual(await cn({ search: '\\' }), []);
  });

  it('filters by status, kind and owner', async () => {
    assert.deepEqual(await cn({ status: 'revoked' }), ['carol-old']);
    assert.equal((await t.store.listCerts({ status: 'valid' })).total, 5);
    assert.deepEqual(await cn({ kind: 'server' }), ['server']);
    assert.deepEqual(await cn({ kind: 'gateway' }), ['office-gw']);
    const bob = (await t.store.getUserByName('bob_smith'))?.id;
    assert.deepEqual(await cn({ ownerId: bob }), ['bob-desk']);
  });

  it('expiringWithinDays keeps not-yet-expired certificates ending within the window', async () => {
    assert.deepEqual(await cn({ expiringWithinDays: 10, now: NOW, sort: 'notAfter' }), [
      'carol-old',
      'alice-laptop',
      'bob-desk',
    ]);
    assert.deepEqual(await cn({ expiringWithinDays: 10, now: NOW, status: 'valid', sort: 'notAfter' }), [
      'alice-laptop',
      'bob-desk',
    ]);
    assert.deepEqual(await cn({ expiringWithinDays: 0, now: NOW }), []);
  });

  it('sorts by every whitelisted key in both directions', async () => {
    assert.deepEqual(await cn({ sort: 'commonName' }), [
      'alice-laptop',
      'alice-phone',
      'bob-desk',
      'carol-old',
      'office-gw',
      'server',
    ]);
    assert.deepEqual((await cn({ sort: 'notAfter', order: 'desc' })).slice(0, 2), ['server', 'alice-phone']);
    assert.equal((await cn({ sort: 'status', order: 'asc' }))[0], 'carol-old');
    assert.equal((await cn({ sort: 'status', order: 'desc' }))[5], 'carol-old');
    const byOwner = (await t.store.listCerts({ sort: 'owner', order: 'desc' })).items.map((c) => c.ownerName);
    assert.deepEqual(byOwner.slice(0, 3), ['bob_smith', 'alice', 'alice']);
    const created = (await t.store.listCerts({ sort: 'createdAt', order: 'asc' })).items.map((c) =>
      c.createdAt.getTime(),
    );
    assert.deepEqual(
      created,
      [...created].sort((a, b) => a - b),
    );
  });

  it('paginates with limit and offset; total ignores the page', async () => {
    const all = await cn({ sort: 'commonName' });
    const p1 = await t.store.listCerts({ sort: 'commonName', limit: 4, offset: 0 });
    const p2 = await t.store.listCerts({ sort: 'commonName', limit: 4, offset: 4 });
    assert.equal(p1.total, 6);
    assert.equal(p2.total, 6);
    assert.deepEqual(
      [...p1.items, ...p2.items].map((c) => c.commonName),
      all,
    );
    assert.deepEqual(await cn({ sort: 'commonName', offset: 5 }), all.slice(5));
    assert.equal((await t.store.listCerts({ limit: 0 })).items.length, 0);
  });

  const bad: [string, CertQuery, string][] = [
    ['400 sort outside the whitelist', { sort: 'serial; DROP TABLE certificates' as 'owner' }, 'sort'],
    ['400 unknown order', { order: 'sideways' as 'asc' }, 'order'],
    ['400 negative limit', { limit: -1 }, 'limit'],
    ['400 fractional offset', { offset: 1.5 }, 'offset'],
    ['400 unknown status', { status: 'expired' as 'valid' }, 'status'],
    ['400 negative expiringWithinDays', { expiringWithinDays: -3 }, 'expiringWithinDays'],
  ];
  for (const [title, q, field] of bad) {
    it(title, async () => {
      await expectAppError(() => t.store.listCerts(q), 'BadRequest', field);
      assert.equal((await t.store.listCerts()).total, 6);
    });
  }
});
