import assert from 'node:assert/strict';
import { newCert, tempStore, type TempStore } from './temp-store.js';

describe('store: transaction', () => {
  let t: TempStore;
  beforeEach(() => {
    t = tempStore();
  });
  afterEach(() => t.cleanup());

  it('returns the value and commits', () => {
    const serial = t.store.transaction(async (tx) => tx.insertCert(newCert()).serial);
    assert.ok(t.store.getCert(serial));
  });

  it('a throw rolls back every write, including the audit row, and rethrows the same error', () => {
    const boom = new Error('boom');
    let serial = '';
    assert.throws(
      () =>
        t.store.transaction(async (tx) => {
          serial = tx.insertCert(newCert()).serial;
          tx.appendAudit({
            actor: 'a',
            action: 'cert.issue',
            target: serial,
            result: 'ok',
            details: {},
          });
          tx.setSetting('k', 'v');
          throw boom;
        }),
      (e) => e === boom,
    );
    assert.equal(t.store.getCert(serial), undefined);
    assert.equal(t.store.listAudit().length, 0);
    assert.equal(t.store.getSetting('k'), undefined);
    // and nothing reached the file either
    assert.equal((t.raw().prepare('SELECT count(*) AS n FROM certificates').get() as { n: number }).n, 0);
  });

  it('nested calls: an inner failure caught by the outer one rolls back only the inner part', () => {
    t.store.transaction(async (tx) => {
      tx.insertCert(newCert({ commonName: 'outer' }));
      assert.throws(() =>
        t.store.transaction(async (tx) => {
          tx.insertCert(newCert({ commonName: 'inner' }));
          throw new Error('inner');
        }),
      );
      // the store's own methods (which use transactions internally) still work inside
      tx.insertCert(newCert({ commonName: 'after' }));
    });
    assert.deepEqual(
      t.store.listCerts({ sort: 'commonName' }).items.map((c) => c.commonName),
      ['after', 'outer'],
    );
  });

  it('nested calls: an outer failure rolls back the committed inner part too', () => {
    assert.throws(() =>
      t.store.transaction(async (tx) => {
        t.store.transaction(async (tx) => tx.insertCert(newCert({ commonName: 'inner' })));
        throw new Error('outer');
      }),
    );
    assert.equal(t.store.listCerts().total, 0);
  });

  it('refuses an async body and rolls back what it did synchronously', () => {
    assert.throws(
      () =>
        t.store.transaction(async (tx) => {
          tx.setSetting('k', 'v');
        }),
      /cannot return a promise/,
    );
    assert.equal(t.store.getSetting('k'), undefined);
  });
});
