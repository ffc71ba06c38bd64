/**
 * What must stay single and ordered when several writers share one PostgreSQL (READ COMMITTED, the
 * server default): two PgStore instances (two pools, as two `serve` replicas would have) race each
 * other on the same rows.
 */
import assert from 'node:assert/strict';
import type { PgStore } from '../../../src/store/pg/pg-store.js';
import { PgStore as Store } from '../../../src/store/pg/pg-store.js';
import { LOCK } from '../../../src/store/locks.js';
import { admitInWindow } from '../../../src/store/pg/rate-window.js';
import { freshPgStore } from '../../helpers/pg-store.js';
import { newCert } from '../../unit/store/temp-store.js';

describe('store (PostgreSQL): concurrent writers', function () {
  this.timeout(120_000);
  let a: PgStore;
  let b: PgStore;
  beforeEach(async () => {
    const first = await freshPgStore(8);
    a = first.store;
    b = await Store.open(first.target); // a second pool on the same database: another replica
  });
  afterEach(async () => {
    await a?.close();
    await b?.close();
  });

  it('one current certificate per common name: 20 racing issues, exactly one wins, the rest 409', async () => {
    const owner = await a.createUser({ name: 'alice', role: 'user', passwordHash: null });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).insertCert(newCert({ commonName: 'alice-laptop', ownerId: owner.id })),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1);
    for (const r of lost) {
      assert.equal((r.reason as { status?: number }).status, 409, String(r.reason));
      assert.equal((r.reason as { field?: string }).field, 'commonName');
    }
    const list = await a.listCerts({ search: 'alice-laptop' });
    assert.equal(list.total, 1);
  });

  it('tunnel addresses: 60 devices allocating at once from two replicas get 60 different addresses', async () => {
    const pool = { subnet: '10.140.0.0/24', first: 0x0a8c0002, last: 0x0a8c00fe };
    const got = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).allocateAddress(`dev-${i}`, pool, new Date())),
    );
    const addresses = new Set(got.map((g) => g.address));
    assert.equal(addresses.size, 60);
    assert.ok(got.every((g) => g.address.startsWith('10.140.0.')));
    assert.equal((await a.listAddresses()).length, 60);
  });

  it('CRL numbers: 40 revokes and 40 re-signs over two replicas save 1..80, strictly rising, none lost', async () => {
    const certs = [];
    for (let i = 0; i < 40; i++) certs.push(await a.insertCert(newCert({ commonName: `dev-${i}` })));
    const saved: number[] = [];
    const jobs = certs.flatMap((c, i) => [
      { store: i % 2 ? a : b, serial: c.serial as string | undefined },
      { store: i % 2 ? b : a, serial: undefined }, // the daily re-sign: reads the number first
    ]);
    await Promise.all(
      jobs.map(({ store, serial }) =>
        store.transaction(async (tx) => {
          if (serial) await tx.markRevoked(serial, 'keyCompromise', new Date());
          const current = await tx.getCrl(); // locks the CRL row: the next revoker waits for this commit
          const number = (current?.number ?? 0) + 1;
          const now = Date.now();
          await tx.saveCrl({
            number,
            pem: `crl ${number}`,
            thisUpdate: new Date(now),
            nextUpdate: new Date(now + 86_400_000),
          });
          await tx.appendAudit({
            actor: 'test',
            action: 'crl.publish',
            target: String(number),
            result: 'ok',
            details: {},
          });
          saved.push(number);
        }),
      ),
    );
    assert.deepEqual(
      [...saved].sort((x, y) => x - y),
      Array.from({ length: 80 }, (_, i) => i + 1),
    );
    assert.equal((await b.getCrl())!.number, 80);
    assert.equal((await a.listRevoked()).length, 40);
    const audit = await a.listAudit({ action: 'crl.publish', limit: 200 });
    // in commit order (audit ids) the numbers rise strictly
    const byId = audit.sort((x, y) => x.id - y.id).map((e) => Number(e.target));
    assert.deepEqual(
      byId,
      Array.from({ length: 80 }, (_, i) => i + 1),
    );
  });

  it('a setting read under its lock: 10 replicas-worth of "make it once" transactions make it once, none fails', async () => {
    // the server identity is made this way: read the setting, and when it is missing mint a certificate
    // and store it; without the lock two replicas both saw "missing" and the second one's insert was a 409
    const made: string[] = [];
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).transaction(async (tx) => {
          await tx.lock(LOCK.setting('server.identity'));
          const current = await tx.getSetting('server.identity');
          if (current !== undefined) return current;
          await new Promise((r) => setTimeout(r, 30)); // the slow part (signing) inside the window
          await tx.insertCert(newCert({ commonName: 'podgate-server' }));
          await tx.setSetting('server.identity', `made by ${i}`);
          made.push(`made by ${i}`);
          return `made by ${i}`;
        }),
      ),
    );
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.deepEqual(
      failed.map((r) => String(r.reason)),
      [],
    );
    assert.equal(made.length, 1);
    const values = results.map((r) => (r as PromiseFulfilledResult<string>).value);
    assert.deepEqual(new Set(values), new Set(made));
    assert.equal((await a.listCerts({ search: 'podgate-server' })).total, 1);
  });

  it('saveCrl outside a lock still refuses a number that is not greater (two writers cannot both save N+1)', async () => {
    const now = Date.now();
    const state = (n: number) => ({
      number: n,
      pem: `crl ${n}`,
      thisUpdate: new Date(now),
      nextUpdate: new Date(now + 1000),
    });
    const r = await Promise.allSettled([a.saveCrl(state(1)), b.saveCrl(state(1))]);
    assert.equal(r.filter((x) => x.status === 'fulfilled').length, 1);
    const failed = r.find((x): x is PromiseRejectedResult => x.status === 'rejected')!;
    assert.equal((failed.reason as { status: number }).status, 409);
  });

  it('a transaction that throws leaves nothing behind; a caught 409 inside it does not spoil it', async () => {
    await a.insertCert(newCert({ commonName: 'taken' }));
    await assert.rejects(
      a.transaction(async (tx) => {
        await tx.createUser({ name: 'ghost', role: 'user', passwordHash: null });
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await b.getUserByName('ghost'), undefined);
    const user = await a.transaction(async (tx) => {
      await assert.rejects(tx.insertCert(newCert({ commonName: 'taken' })), /already has a valid/);
      return tx.createUser({ name: 'kept', role: 'user', passwordHash: null });
    });
    assert.equal((await b.getUserByName('kept'))?.id, user.id);
  });

  it('a transaction handle is dead once its transaction ended', async () => {
    let leaked: { getSetting(k: string): Promise<string | undefined> } | undefined;
    await a.transaction(async (tx) => {
      leaked = tx;
      await tx.setSetting('k', 'v');
    });
    await assert.rejects(async () => leaked!.getSetting('k'), /transaction has ended/);
  });
});

describe('store (PostgreSQL): limits shared by replicas', function () {
  this.timeout(60_000);
  it('a sliding window of 10 per hour: 30 parallel attempts over two replicas admit exactly 10', async () => {
    const { store: a, target } = await freshPgStore(8);
    const b = await Store.open(target);
    try {
      const now = 1_800_000_000_000;
      const verdicts = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (i % 2 ? a : b).withDb((db) => admitInWindow(db, 'issue', 'user:7', 10, 3_600_000, now + i)),
        ),
      );
      assert.equal(verdicts.filter((v) => v.allowed).length, 10);
      const refused = verdicts.filter((v) => !v.allowed);
      assert.ok(refused.every((v) => v.retryAfterMs > 3_500_000 && v.retryAfterMs <= 3_600_000));
      // an hour after the first ones, slots open again; another key was never limited
      const later = await a.withDb((db) =>
        admitInWindow(db, 'issue', 'user:7', 10, 3_600_000, now + 3_600_010),
      );
      assert.equal(later.allowed, true);
      const other = await b.withDb((db) => admitInWindow(db, 'issue', 'user:8', 10, 3_600_000, now));
      assert.equal(other.allowed, true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
