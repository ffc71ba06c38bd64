/**
 * The same store behaviour on both engines: every check below runs against a SQLite file and against a
 * PostgreSQL database (Debian's server, started by the test). Names, messages, fields, orders and
 * transaction semantics must match, because the services above the store do not know which one runs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore, type Store } from '../../../src/store/index.js';
import { LOCK } from '../../../src/store/locks.js';
import { PgStore } from '../../../src/store/pg/pg-store.js';
import { freshPgStore } from '../../helpers/pg-store.js';
import { newCert } from '../../unit/store/temp-store.js';

/** reopen: a second store on the same database (another process's connections, as the CLI beside serve). */
type Opened = { store: Store; reopen(): Promise<Store>; cleanup(): Promise<void> };

const ENGINES: Record<string, () => Promise<Opened>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podgate-engines-'));
    const store = SqliteStore.open(join(dir, 'podgate.db'));
    return {
      store,
      reopen: async () => SqliteStore.open(join(dir, 'podgate.db')),
      cleanup: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  postgres: async () => {
    const { store, target } = await freshPgStore(4);
    return { store, reopen: () => PgStore.open(target), cleanup: () => store.close() };
  },
};

async function rejects(p: Promise<unknown>, status: number, field?: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: Error & { status?: number; field?: string }) => {
    assert.equal(err.status, status, err.message);
    if (field !== undefined) assert.equal(err.field, field, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

for (const [engine, open] of Object.entries(ENGINES)) {
  describe(`store on ${engine}: the same behaviour`, function () {
    this.timeout(60_000);
    let o: Opened;
    let s: Store;
    beforeEach(async () => {
      o = await open();
      s = o.store;
    });
    afterEach(() => o.cleanup());

    it('users: create, read, list by name, 409 duplicate, 404 unknown, a new password ends sessions', async () => {
      const bob = await s.createUser({ name: 'bob', role: 'user', passwordHash: null });
      const alice = await s.createUser({ name: 'alice', role: 'admin', passwordHash: '$argon2id$x' });
      assert.deepEqual(
        (await s.listUsers()).map((u) => u.name),
        ['alice', 'bob'],
      );
      assert.equal((await s.getUserById(bob.id))?.name, 'bob');
      assert.equal(await s.getUserByName('carol'), undefined);
      await rejects(
        s.createUser({ name: 'bob', role: 'user', passwordHash: null }),
        409,
        'name',
        /already exists/,
      );
      await rejects(s.updateUser(9999, { role: 'admin' }), 404);
      await s.setSession('sid-1', '{}', new Date(Date.now() + 60_000), alice.id);
      await s.updateUser(alice.id, { passwordHash: '$argon2id$y' });
      assert.equal(await s.getSession('sid-1'), undefined);
      const off = await s.updateUser(bob.id, { disabled: true });
      assert.equal(off.disabled, true);
    });

    it('certificates: fields read back, 409 on a second current name, revoke once, list and search', async () => {
      const owner = await s.createUser({ name: 'alice', role: 'user', passwordHash: null });
      const input = newCert({ ownerId: owner.id, commonName: 'alice-laptop' });
      const c = await s.insertCert(input);
      for (const k of Object.keys(input) as (keyof typeof input)[]) assert.deepEqual(c[k], input[k], k);
      assert.equal(c.ownerName, 'alice');
      await rejects(
        s.insertCert(newCert({ ownerId: owner.id, commonName: 'alice-laptop' })),
        409,
        'commonName',
      );
      await rejects(s.insertCert({ ...newCert(), serial: input.serial }), 409, 'serial');
      await rejects(s.insertCert(newCert({ ownerId: 999 })), 400, 'owner');
      await rejects(s.insertCert(newCert({ commonName: 'alice-laptop', ownerId: null })), 409, 'commonName');
      const r = await s.markRevoked(c.serial, 'keyCompromise', new Date('2026-06-01T00:00:00.000Z'));
      assert.equal(r.status, 'revoked');
      await rejects(s.markRevoked(c.serial, 'keyCompromise', new Date()), 409, 'serial');
      await rejects(s.markRevoked('00AB', 'keyCompromise', new Date()), 404);
      assert.deepEqual(
        (await s.listRevoked()).map((x) => x.serial),
        [c.serial],
      );
      await s.insertCert(newCert({ ownerId: owner.id, commonName: 'alice-phone', deviceName: 'phone' }));
      const found = await s.listCerts({ search: 'PHON' });
      assert.deepEqual(
        found.items.map((x) => x.commonName),
        ['alice-phone'],
      );
      assert.equal((await s.listCerts({ status: 'revoked' })).total, 1);
      const page1 = await s.listCerts({ sort: 'commonName', limit: 1 });
      assert.equal(page1.total, 2);
      const page2 = await s.listCerts({ sort: 'commonName', limit: 1, after: page1.nextCursor });
      assert.deepEqual(
        [...page1.items, ...page2.items].map((x) => x.commonName),
        ['alice-laptop', 'alice-phone'],
      );
      await rejects(s.listCerts({ after: 'nonsense!' }), 400, 'cursor');
    });

    it('list totals: counted once per change, right after writes from this store, another one, a rollback', async () => {
      const owner = await s.createUser({ name: 'alice', role: 'user', passwordHash: null });
      const views = [
        {},
        { status: 'valid' as const },
        { ownerId: owner.id },
        { search: 'lap' },
        { search: 'lap', status: 'valid' as const },
        { expiringWithinDays: 400, now: new Date('2026-06-01T00:00:00.000Z') },
      ];
      const totals = async (store: Store) =>
        Promise.all(views.map(async (v) => (await store.listCerts({ ...v, limit: 1 })).total));
      const want = async () => {
        const all = (await s.listCerts()).items;
        return views.map(
          (v) =>
            all.filter(
              (c) =>
                (!('status' in v) || c.status === v.status) &&
                (!('ownerId' in v) || c.ownerId === v.ownerId) &&
                (!('search' in v) || /lap/i.test(`${c.commonName} ${c.deviceName} ${c.ownerName ?? ''}`)) &&
                (!('expiringWithinDays' in v) || c.notAfter.getTime() > v.now!.getTime()),
            ).length,
        );
      };
      const a = await s.insertCert(newCert({ ownerId: owner.id, commonName: 'a1' }));
      assert.deepEqual(await totals(s), [1, 1, 1, 1, 1, 1]);
      assert.deepEqual(await totals(s), [1, 1, 1, 1, 1, 1], 'the same totals a second time');
      const other = await o.reopen();
      try {
        // each write by the other store changes what this one's memoized totals must say
        await other.insertCert(newCert({ commonName: 'b1', deviceName: 'laptop' }));
        assert.deepEqual(await totals(s), await want());
        await other.markRevoked(a.serial, 'superseded', new Date());
        assert.deepEqual(await totals(s), await want());
        await other.insertCert(newCert({ ownerId: owner.id, commonName: 'c1', deviceName: 'phone' }));
        assert.deepEqual(await totals(s), await want());
        await other.transaction(async (tx) => {
          await tx.insertCert(newCert({ commonName: 'd1', notAfter: new Date('2026-03-01T00:00:00.000Z') }));
        });
        assert.deepEqual(await totals(s), await want());
        assert.deepEqual(await totals(other), await want());
      } finally {
        await other.close();
      }
      // inside a transaction that rolls back: its totals see its own row, later ones do not
      const before = await want();
      await assert.rejects(
        s.transaction(async (tx) => {
          await tx.insertCert(newCert({ ownerId: owner.id, commonName: 'e1', deviceName: 'laptop' }));
          assert.equal((await tx.listCerts({ search: 'lap', limit: 1 })).total, before[3]! + 1);
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.deepEqual(await totals(s), before);
      await s.insertCert(newCert({ commonName: 'f1', deviceName: 'desk' }));
      assert.deepEqual(await totals(s), await want());
      assert.deepEqual(await want(), [5, 4, 2, 3, 2, 4]);
    });

    it('renewal: superseding once, then due; the renewed name may have a successor', async () => {
      const old = await s.insertCert(newCert({ commonName: 'dev' }));
      const next = newCert({ commonName: 'dev' });
      const at = new Date('2026-03-01T00:00:00.000Z');
      await s.transaction(async (tx) => {
        await tx.markSuperseding(old.serial, next.serial, at);
        await tx.insertCert(next);
      });
      await rejects(s.markSuperseding(old.serial, next.serial, at), 409, 'serial', /already renewed/);
      assert.deepEqual(await s.listSupersedeDue(new Date('2026-04-01T00:00:00.000Z')), [old.serial]);
      assert.equal((await s.getValidCertByCommonName('dev'))?.serial, next.serial);
    });

    it('CRL: save increasing numbers only; audit: newest first, filters, count, append-only rows', async () => {
      const t = new Date('2026-01-01T00:00:00.000Z');
      const state = (n: number) => ({
        number: n,
        pem: `p${n}`,
        thisUpdate: t,
        nextUpdate: new Date(t.getTime() + 1000),
      });
      await s.saveCrl(state(1));
      await rejects(s.saveCrl(state(1)), 409, 'number');
      await s.saveCrl(state(3));
      assert.equal((await s.getCrl())?.number, 3);
      for (let i = 0; i < 3; i++) {
        await s.appendAudit({
          actor: 'a',
          action: i === 1 ? 'x' : 'y',
          target: `t${i}`,
          result: 'ok',
          details: { i },
        });
      }
      const all = await s.listAudit();
      assert.deepEqual(
        all.map((e) => e.target),
        ['t2', 't1', 't0'],
      );
      assert.deepEqual(
        (await s.listAudit({ action: 'y', limit: 1 })).map((e) => e.target),
        ['t2'],
      );
      assert.deepEqual(
        (await s.listAudit({ beforeId: all[0]!.id })).map((e) => e.target),
        ['t1', 't0'],
      );
      assert.equal(await s.countAudit({ action: 'y' }), 2);
      assert.deepEqual(all[2]!.details, { i: 0 });
      await rejects(
        s.appendAudit({ actor: '', action: 'x', target: '', result: 'ok', details: {} }),
        400,
        'actor',
      );
    });

    it('transactions: a throw rolls everything back; a nested throw only its part', async () => {
      await assert.rejects(
        s.transaction(async (tx) => {
          await tx.setSetting('a', '1');
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await s.getSetting('a'), undefined);
      await s.transaction(async (tx) => {
        await tx.setSetting('b', '1');
        await assert.rejects(
          tx.transaction(async (inner) => {
            await inner.setSetting('c', '1');
            throw new Error('inner');
          }),
          /inner/,
        );
      });
      assert.equal(await s.getSetting('b'), '1');
      assert.equal(await s.getSetting('c'), undefined);
    });

    it('named locks: taken in a transaction and in its savepoints, 500 outside one', async () => {
      await rejects(s.lock(LOCK.crl), 500, undefined, /outside a transaction/);
      const value = await s.transaction(async (tx) => {
        await tx.lock(LOCK.setting('k'));
        await tx.transaction((inner) => inner.lock(LOCK.setting('k'))); // held already: no self-deadlock
        await tx.setSetting('k', 'v');
        return tx.getSetting('k');
      });
      assert.equal(value, 'v');
    });

    it('tokens, sessions, pending, gateways, import links: the same answers', async () => {
      const u = await s.createUser({ name: 'alice', role: 'user', passwordHash: null });
      const tok = await s.createToken({ userId: u.id, name: 'ci', tokenHash: 'h1', expiresAt: null });
      assert.equal((await s.findTokenByHash('h1'))?.id, tok.id);
      await rejects(s.createToken({ userId: u.id, name: 'ci', tokenHash: 'h1' }), 409, 'tokenHash');
      await rejects(s.createToken({ userId: 999, name: 'ci', tokenHash: 'h2' }), 400, 'userId');
      await s.deleteToken(tok.id);
      await rejects(s.deleteToken(tok.id), 404);
      await rejects(s.setSession('x', '{}', new Date(Date.now() + 1000), 999), 400, 'userId');
      assert.equal(await s.pruneSessions(new Date(Date.now() + 5000)), 0);
      await s.addPending({
        serial: 'AA',
        commonName: 'cn',
        crlNumber: 2,
        queuedAt: new Date('2026-01-02T00:00:00.000Z'),
      });
      await s.addPending({
        serial: 'AA',
        commonName: 'cn',
        crlNumber: 5,
        queuedAt: new Date('2026-01-03T00:00:00.000Z'),
      });
      const p = await s.listPending();
      assert.equal(p[0]!.crlNumber, 5);
      assert.equal(p[0]!.queuedAt.toISOString(), '2026-01-02T00:00:00.000Z');
      assert.equal(await s.clearPending(['AA', 'BB']), 1);
      await rejects(
        s.upsertGateway({
          name: 'gw',
          target: 'u@h:22',
          certSerial: 'ABCD',
          status: 'x',
          details: {},
          updatedAt: new Date(),
        }),
        400,
        'certSerial',
      );
      await rejects(s.deleteGateway('gw'), 404);
      const link = await s.createImportLink({
        userId: u.id,
        tokenHash: 'a'.repeat(64),
        deviceName: 'phone',
        keyType: null,
        createdAt: new Date(),
        createdIp: '127.0.0.1',
        expiresAt: new Date(Date.now() + 60_000),
      });
      const again = {
        userId: u.id,
        tokenHash: 'a'.repeat(64),
        deviceName: 'tablet',
        keyType: null,
        createdAt: new Date(),
        createdIp: '127.0.0.1',
        expiresAt: new Date(Date.now() + 60_000),
      };
      await rejects(s.createImportLink(again), 409, 'tokenHash');
      await rejects(s.createImportLink({ ...again, userId: 999, tokenHash: 'b'.repeat(64) }), 400, 'userId');
      const claims = await Promise.all(
        [1, 2, 3].map(() => s.claimImportLink(link.id, new Date(), '127.0.0.1')),
      );
      assert.deepEqual(claims.filter(Boolean).length, 1, 'exactly one claim wins');
    });

    it('groups, rules, addresses and the access version', async () => {
      const u = await s.createUser({ name: 'alice', role: 'user', passwordHash: null });
      const v0 = (await s.getAccessState()).version;
      await s.createGroup({ name: 'devs' });
      await rejects(s.createGroup({ name: 'devs' }), 409, 'name');
      await s.addGroupMember('devs', u.id);
      await rejects(s.addGroupMember('devs', u.id), 409, 'user');
      await rejects(s.addGroupMember('devs', 999), 404);
      assert.deepEqual((await s.getGroup('devs'))?.members, ['alice']);
      assert.deepEqual(await s.localGroupsOf(u.id), ['devs']);
      await rejects(s.removeGroupMember('nope', u.id), 404);
      const pool = { subnet: '10.140.0.0/29', first: 0x0a8c0002, last: 0x0a8c0003 };
      const a = await s.allocateAddress('a', pool, new Date());
      const b = await s.allocateAddress('b', pool, new Date());
      assert.deepEqual([a.address, b.address], ['10.140.0.2', '10.140.0.3']);
      assert.equal((await s.allocateAddress('a', pool, new Date())).address, '10.140.0.2', 'kept');
      await rejects(s.allocateAddress('c', pool, new Date()), 409, 'vpn.clientSubnet');
      assert.ok((await s.getAccessState()).version > v0, 'the triggers bumped the access version');
      assert.equal(await s.raiseAccessVersion(1000), 1000);
      assert.equal(await s.raiseAccessVersion(5), 1000, 'never lowered');
    });
  });
}
