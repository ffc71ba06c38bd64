/**
 * The PostgreSQL side of cert-list-plans.test.ts: at 10,000 rows (after ANALYZE, as autovacuum would
 * leave them, planner settings at their defaults) the statements listCerts runs for every filter and
 * sort of the admin list, the page and the count, read indexes (EXPLAIN of the real statements, with
 * their parameters): never a sequential scan of certificates.
 * One decision, not a pending case: the count of a search. Its matches are found by an OR of three
 * ILIKEs, one per name column, each served by that column's trigram index (PostgreSQL 004; asserted
 * below with sequential scans disabled, which proves that the statement can use them); at 10,000 rows
 * with the planner's defaults PostgreSQL still reads the table for the count (cost ~530 against more for
 * the bitmaps: "use" and "ser" of "user17" are trigrams of every row), and that is the plan it runs.
 * The count then runs once per search text and version of the list (src/store/count-memo.ts), not per
 * request (that remembered totals stay right after writes: engines.test.ts, "list totals").
 */
import assert from 'node:assert/strict';
import { explainCertList } from '../../../src/store/pg/cert-list.js';
import type { PgStore } from '../../../src/store/pg/pg-store.js';
import type { CertQuery } from '../../../src/store/index.js';
import { freshPgStore } from '../../helpers/pg-store.js';

const N = 10_000;
const NOW = new Date('2026-06-01T00:00:00.000Z');
const DAY = 86_400_000;
const SORTS = ['createdAt', 'notAfter', 'commonName', 'owner', 'status'] as const;
const ORDERS = ['asc', 'desc'] as const;
const FILTERS: Record<string, CertQuery> = {
  none: {},
  valid: { status: 'valid' },
  revoked: { status: 'revoked' },
  expiring: { status: 'valid', expiringWithinDays: 30, now: NOW },
  search: { search: 'user17' },
  'search + valid': { search: 'laptop', status: 'valid' },
  owner: { ownerId: 3 },
};

describe('store (PostgreSQL): every admin list view reads an index (EXPLAIN, 10,000 rows)', function () {
  this.timeout(300_000);
  let store: PgStore;

  before(async () => {
    ({ store } = await freshPgStore());
    const users: { id: number; name: string }[] = [];
    for (let i = 0; i < 50; i++)
      users.push(
        await store.createUser({
          name: `user${String(i).padStart(2, '0')}`,
          role: 'user',
          passwordHash: null,
        }),
      );
    await store.transaction(async (tx) => {
      for (let i = 0; i < N; i++) {
        const owner = users[i % users.length]!;
        const serial = `AB${i.toString(16).toUpperCase().padStart(8, '0')}`;
        await tx.insertCert({
          serial,
          commonName: `${owner.name}-dev${i}`,
          ownerId: owner.id,
          deviceName: i % 7 === 0 ? `Laptop ${i}` : `phone_${i}`,
          kind: i % 100 === 0 ? 'gateway' : 'client',
          keyType: 'ec-p256',
          notBefore: new Date(NOW.getTime() - 30 * DAY),
          notAfter: new Date(NOW.getTime() + ((i * 37) % 400) * DAY - 10 * DAY),
          certPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
        });
        if (i % 10 === 3) await tx.markRevoked(serial, 'superseded', NOW);
      }
    });
    await store.withDb((db) => db.exec('ANALYZE'));
  });
  after(async () => {
    await store?.close();
  });

  for (const [name, filter] of Object.entries(FILTERS)) {
    for (const sort of SORTS) {
      for (const order of ORDERS) {
        it(`${name}, sort ${sort} ${order}: page${filter.search === undefined ? ' and count' : ''} read indexes`, async () => {
          const q: CertQuery = { ...filter, sort, order, limit: 50, offset: 0 };
          const plans = await store.withDb((db) => explainCertList(db, q));
          for (const [which, plan] of Object.entries(plans)) {
            if (which === 'count' && filter.search !== undefined) continue; // see the header
            const text = `${name} ${sort} ${order} ${which}:\n${plan.join('\n')}`;
            assert.ok(!plan.some((l) => /Seq Scan on certificates\b/.test(l)), `sequential scan: ${text}`);
            assert.ok(
              // a count may read the two rows of cert_counts (status alone) instead
              plan.some((l) =>
                (which === 'count' ? /Index|Bitmap|on cert_counts\b/ : /Index|Bitmap/).test(l),
              ),
              `no index: ${text}`,
            );
          }
        });
      }
    }
  }

  for (const search of new Set(Object.values(FILTERS).flatMap((f) => (f.search ? [f.search] : [])))) {
    it(`search "${search}": the count can find its matches through the three trigram indexes`, async () => {
      const plan = await store.withDb((db) =>
        db.atomic(async (tx) => {
          // not the plan that runs (see the header): this shows the statement can use each index
          await tx.exec('SET LOCAL enable_seqscan = off');
          return (await explainCertList(tx, { search, limit: 50 })).count;
        }),
      );
      const text = `search "${search}" count:\n${plan.join('\n')}`;
      assert.ok(!plan.some((l) => /Seq Scan on certificates\b/.test(l)), `no index usable: ${text}`);
      for (const column of ['common_name', 'device_name', 'owner_name'])
        assert.ok(
          plan.some((l) => new RegExp(`Bitmap Index Scan on certificates_search_${column}\\b`).test(l)),
          `search of ${column} not served by its trigram index: ${text}`,
        );
    });
  }

  it('the search found by the index is the one the rows hold', async () => {
    const all = await store.listCerts();
    const got = await store.listCerts({ search: 'user17', limit: 50 });
    const want = all.items.filter((c) => /user17/i.test(`${c.commonName} ${c.deviceName} ${c.ownerName}`));
    assert.ok(want.length > 0);
    assert.equal(got.total, want.length);
  });
});
