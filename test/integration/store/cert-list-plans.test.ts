/**
 * The admin certificate list at 10,000 rows reads indexes for every sort, filter and search it offers
 * (migration 013): EXPLAIN QUERY PLAN of each combination, first and deep (cursor) pages, on a real
 * SQLite file after ANALYZE-free inserts like production. Rules asserted per combination:
 * - never a full scan of certificates (`SCAN c` without an index);
 * - with a filter, the rows are found by an index search (`SEARCH c ...`) or the trigram search index,
 *   never by walking a whole index; only the filters that bound the rows themselves (an expiry window, a
 *   search) may sort what they found (`USE TEMP B-TREE`): a status filter must read its sort from an index;
 * - without a filter, an ordered index walk (`SCAN c USING ... INDEX`) stopped by LIMIT is the plan, and
 *   no sort of the table (`USE TEMP B-TREE`) happens;
 * - the count reads cert_counts or an index search, never the table.
 * Also: keyset pages (cursor) list every row exactly once in every order, the same rows as OFFSET pages,
 * and counts agree with the rows after revocations.
 */
import assert from 'node:assert/strict';
import { CertLister } from '../../../src/store/cert-query.js';
import type { CertQuery } from '../../../src/store/index.js';
import { tempStore, type TempStore } from '../../unit/store/temp-store.js';

const N = 10_000;
const NOW = new Date('2026-06-01T00:00:00.000Z');
const DAY = 86_400_000;
const SORTS = ['createdAt', 'notAfter', 'commonName', 'owner', 'status'] as const;
const ORDERS = ['asc', 'desc'] as const;
/** The filters the admin list offers (web/actions.ts listCerts), plus the owner filter of the CLI. */
const FILTERS: Record<string, CertQuery> = {
  none: {},
  valid: { status: 'valid' },
  revoked: { status: 'revoked' },
  expiring: { status: 'valid', expiringWithinDays: 30, now: NOW },
  search: { search: 'user17' },
  'search short': { search: '7-' },
  'search + valid': { search: 'laptop', status: 'valid' },
  'search + expiring': { search: 'dev1', status: 'valid', expiringWithinDays: 30, now: NOW },
  owner: { ownerId: 3 },
  'owner + valid': { ownerId: 3, status: 'valid' },
};

/** Filters whose matches are few by construction (a window, a search, one owner's devices): sorting them is fine. */
const BOUNDED = new Set([
  'expiring',
  'search',
  'search short',
  'search + valid',
  'search + expiring',
  'owner',
  'owner + valid',
]);

function checkPlan(
  label: string,
  filtered: boolean,
  mayTempSort: boolean,
  p: { count: string[]; select: string[] },
): void {
  const text = `${label}\n  count: ${p.count.join(' | ')}\n  select: ${p.select.join(' | ')}`;
  for (const line of [...p.count, ...p.select]) {
    assert.doesNotMatch(line, /^SCAN c$/, `full scan of certificates: ${text}`);
    assert.doesNotMatch(line, /^SCAN certificates\b/, `full scan of certificates: ${text}`);
  }
  for (const line of p.count) assert.doesNotMatch(line, /^SCAN c\b/, `count walks certificates: ${text}`);
  if (filtered) {
    for (const line of p.select)
      assert.doesNotMatch(line, /^SCAN c\b/, `a filter walks a whole index: ${text}`);
    assert.ok(
      p.select.some((l) => /^SEARCH c USING/.test(l) || /VIRTUAL TABLE/.test(l)),
      `no index search: ${text}`,
    );
  }
  if (!mayTempSort) assert.ok(!p.select.some((l) => /TEMP B-TREE/.test(l)), `sorts the rows: ${text}`);
}

describe('store: every admin list view reads an index (EXPLAIN QUERY PLAN, 10,000 rows)', function () {
  this.timeout(300_000);
  let t: TempStore;
  let lister: CertLister;

  before(() => {
    t = tempStore();
    const users = Array.from({ length: 50 }, (_, i) =>
      t.store.createUser({ name: `user${String(i).padStart(2, '0')}`, role: 'user', passwordHash: null }),
    );
    t.store.transaction(async (tx) => {
      for (let i = 0; i < N; i++) {
        const owner = users[i % users.length]!;
        const serial = `AB${i.toString(16).toUpperCase().padStart(8, '0')}`;
        tx.insertCert({
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
        if (i % 10 === 3) tx.markRevoked(serial, 'superseded', NOW);
      }
    });
    lister = new CertLister(t.raw());
  });
  after(() => t.cleanup());

  for (const [name, filter] of Object.entries(FILTERS)) {
    for (const sort of SORTS) {
      for (const order of ORDERS) {
        it(`${name}, sort ${sort} ${order}: first and deep pages read indexes`, () => {
          const q: CertQuery = { ...filter, sort, order, limit: 50 };
          const filtered = Object.keys(filter).length > 0;
          const mayTempSort = BOUNDED.has(name);
          checkPlan(`${name} ${sort} ${order} page 1`, filtered, mayTempSort, lister.plans(q));
          const first = lister.list(q);
          if (first.nextCursor) {
            const deep = { ...q, after: first.nextCursor };
            checkPlan(`${name} ${sort} ${order} after cursor`, true, mayTempSort, lister.plans(deep));
          }
        });
      }
    }
  }

  it('keyset pages list every row once, in the same order as OFFSET pages, in every sort', () => {
    for (const sort of SORTS) {
      for (const order of ORDERS) {
        const byOffset = lister.list({ sort, order }).items.map((c) => c.serial);
        const byCursor: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = lister.list({ sort, order, limit: 700, ...(after ? { after } : {}) });
          byCursor.push(...page.items.map((c) => c.serial));
          if (!page.nextCursor) break;
          after = page.nextCursor;
        }
        assert.equal(byCursor.length, N, `${sort} ${order}`);
        assert.deepEqual(byCursor, byOffset, `${sort} ${order}`);
      }
    }
  });

  it('counts from cert_counts and from indexes agree with the rows', () => {
    const rows = t.store.listCerts();
    const valid = rows.items.filter((c) => c.status === 'valid').length;
    assert.equal(rows.total, N);
    assert.equal(t.store.listCerts({ status: 'valid', limit: 0 }).total, valid);
    assert.equal(t.store.listCerts({ status: 'revoked', limit: 0 }).total, N - valid);
    const serial = rows.items.find((c) => c.status === 'valid')!.serial;
    t.store.markRevoked(serial, 'keyCompromise', NOW);
    assert.equal(t.store.listCerts({ status: 'valid', limit: 0 }).total, valid - 1);
    assert.equal(t.store.listCerts({ status: 'revoked', limit: 0 }).total, N - valid + 1);
    const search = t.store.listCerts({ search: 'user17', limit: 0 }).total;
    assert.equal(
      search,
      rows.items.filter((c) => /user17/i.test(`${c.commonName} ${c.deviceName} ${c.ownerName}`)).length,
    );
    assert.ok(search > 0);
  });

  it('400 naming the cursor for a cursor this list did not return', () => {
    for (const after of ['nope!', Buffer.from('[1,2]').toString('base64url'), 'x'.repeat(2000)]) {
      assert.throws(
        () => lister.list({ limit: 5, after }),
        (e: Error & { field?: string }) => e.field === 'cursor',
      );
    }
  });
});
