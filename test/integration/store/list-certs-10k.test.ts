import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { CertQuery, NewCert } from '../../../src/store/index.js';
import { tempStore, type TempStore } from '../../unit/store/temp-store.js';

const N = 10_000;
const NOW = new Date('2026-06-01T00:00:00.000Z');
const DAY = 86_400_000;

interface Row extends NewCert {
  ownerName: string;
  revoked: boolean;
}

/** Median of a few runs, in ms (printed, never asserted). */
function time(fn: () => unknown, runs = 7): number {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  return t.sort((a, b) => a - b)[Math.floor(runs / 2)] as number;
}

describe('store: listCerts at 10,000 rows', function () {
  this.timeout(120_000);
  let t: TempStore;
  const rows: Row[] = [];

  before(() => {
    t = tempStore();
    const users = Array.from({ length: 50 }, (_, i) =>
      t.store.createUser({ name: `user${String(i).padStart(2, '0')}`, role: 'user', passwordHash: null }),
    );
    const start = performance.now();
    t.store.transaction(async (tx) => {
      for (let i = 0; i < N; i++) {
        const owner = users[i % users.length]!;
        const r: Row = {
          serial: `AB${i.toString(16).toUpperCase().padStart(8, '0')}`,
          commonName: `${owner.name}-dev${i}`,
          ownerId: owner.id,
          ownerName: owner.name,
          deviceName: i % 7 === 0 ? `Laptop ${i}` : `phone_${i}`,
          kind: i % 100 === 0 ? 'gateway' : 'client',
          keyType: 'ec-p256',
          notBefore: new Date(NOW.getTime() - 30 * DAY),
          notAfter: new Date(NOW.getTime() + ((i * 37) % 400) * DAY - 10 * DAY),
          certPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
          revoked: i % 10 === 3,
        };
        const { ownerName: _o, revoked: _r, ...cert } = r;
        tx.insertCert(cert);
        if (r.revoked) tx.markRevoked(r.serial, 'superseded', NOW);
        rows.push(r);
      }
    });
    console.log(
      `      inserted ${N} certificates (10% revoked) in one transaction: ${(performance.now() - start).toFixed(0)} ms`,
    );
  });
  after(() => t?.cleanup());

  const expectTotal = (q: CertQuery, pred: (r: Row) => boolean): void => {
    const r = t.store.listCerts({ ...q, limit: 20 });
    assert.equal(r.total, rows.filter(pred).length, JSON.stringify(q));
    assert.ok(r.items.length <= 20);
  };

  it('totals match a plain filter over the inserted rows', () => {
    expectTotal({}, () => true);
    expectTotal({ status: 'revoked' }, (r) => r.revoked);
    expectTotal({ status: 'valid', kind: 'gateway' }, (r) => !r.revoked && r.kind === 'gateway');
    expectTotal({ search: 'laptop' }, (r) => r.deviceName.toLowerCase().includes('laptop'));
    expectTotal({ search: 'USER07' }, (r) => r.ownerName === 'user07');
    expectTotal({ search: '_' }, (r) => r.deviceName.includes('_'));
    expectTotal({ search: 'dev12' }, (r) => r.commonName.includes('dev12'));
    const owner = t.store.getUserByName('user13')!.id;
    expectTotal({ ownerId: owner, status: 'valid' }, (r) => r.ownerId === owner && !r.revoked);
    expectTotal(
      { expiringWithinDays: 30, now: NOW },
      (r) => r.notAfter > NOW && r.notAfter.getTime() <= NOW.getTime() + 30 * DAY,
    );
  });

  it('paging through everything by notAfter returns each row once, in order', () => {
    const seen: string[] = [];
    let prev = -Infinity;
    for (let offset = 0; ; offset += 700) {
      const page = t.store.listCerts({ sort: 'notAfter', order: 'asc', limit: 700, offset });
      assert.equal(page.total, N);
      if (page.items.length === 0) break;
      for (const c of page.items) {
        assert.ok(c.notAfter.getTime() >= prev);
        prev = c.notAfter.getTime();
        seen.push(c.serial);
      }
    }
    assert.equal(seen.length, N);
    assert.equal(new Set(seen).size, N);
  });

  it('sort by owner desc puts the last owner first', () => {
    const page = t.store.listCerts({ sort: 'owner', order: 'desc', limit: 5 });
    assert.deepEqual(
      page.items.map((c) => c.ownerName),
      Array(5).fill('user49'),
    );
  });

  it('prints query times and plans (figures only, no time assertion)', () => {
    const cases: [string, CertQuery][] = [
      ['first page, default sort', { limit: 50 }],
      ['status=valid sort notAfter', { status: 'valid', sort: 'notAfter', limit: 50 }],
      ['search "laptop"', { search: 'laptop', limit: 50 }],
      ['search owner "user07" sort owner', { search: 'user07', sort: 'owner', limit: 50 }],
      ['expiring within 30 days', { expiringWithinDays: 30, now: NOW, limit: 50 }],
      ['ownerId filter', { ownerId: 1, limit: 50 }],
      ['last page by commonName', { sort: 'commonName', limit: 50, offset: N - 50 }],
      ['everything, no limit', {}],
    ];
    for (const [name, q] of cases) {
      const ms = time(() => t.store.listCerts(q));
      console.log(`      listCerts ${name}: ${ms.toFixed(2)} ms (median of 7)`);
    }
    const raw: Database.Database = t.raw();
    const plan = raw
      .prepare(
        "EXPLAIN QUERY PLAN SELECT serial FROM certificates c WHERE c.status = 'valid' ORDER BY c.not_after LIMIT 50",
      )
      .all() as { detail: string }[];
    console.log(`      plan (status + sort notAfter): ${plan.map((p) => p.detail).join(' | ')}`);
  });
});
