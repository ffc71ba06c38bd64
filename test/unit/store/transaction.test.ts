import assert from 'node:assert/strict';
import { newCert, tempStore, type TempStore } from './temp-store.js';

describe('store: transaction', () => {
  let t: TempStore;
  beforeEach(() => {
    t = tempStore();
  });
  afterEach(() => t.cleanup());

  it('returns the value and commits', async () => {
    const serial = await t.store.transaction(async (tx) => await (await (tx.insertCert(newCert()))).serial);
    assert.ok(await t.store.getCert(serial));
  });

  it('a throw rolls back every write, including the audit row, and rethrows the same error', async () => {
    const boom = new Error('boom');
    let serial = '';
    assert.throws(
      () =>
        t.store.transaction(async (tx) => {
          serial = await (await (tx.insertCert(newCert()))).serial;
          await tx.appendAudit({
            actor: 'a',
            action: 'cert.issue',
            target: serial,
            result: 'ok',
            details: {},
          });
          await tx.setSetting('k', 'v');
          throw boom;
        }),
      (e) => e === boom,
    );
    assert.equal(await t.store.getCert(serial), undefined);
    assert.equal(await (await (t.store.listAudit())).length, 0);
    assert.equal(await t.store.getSetting('k'), undefined);
    // and nothing reached the file either
    assert.equal((t.raw().prepare('SELECT count(*) AS n FROM certificates').get() as { n: number }).n, 0);
  });

  it('nested calls: an inner failure caught by the outer one rolls back only the inner part', async () => {
    await t.store.transaction(async (tx) => {
      await tx.insertCert(newCert({ commonName: 'outer' }));
      assert.throws(() =>
        t.store.transaction(async (tx) => {
          await tx.insertCert(newCert({ commonName: 'inner' }));
          throw new Error('inner');
        }),
      );
      // the store's own methods (which use transactions internally) still work inside
      await tx.insertCert(newCert({ commonName: 'after' }));
    });
    assert.deepEqual(
      await (await (t.store.listCerts({ sort: 'commonName' }))).items.map((c) => c.commonName),
      ['after', 'outer'],
    );
  });

  it('nested calls: an outer failure rolls back the committed inner part too', async () => {
    assert.throws(() =>
      t.store.transaction(async (tx) => {
        await t.store.transaction(async (tx) => tx.insertCert(newCert({ commonName: 'inner' })));
        throw new Error('outer');
      }),
    );
    assert.equal(await (await (t.store.listCerts())).total, 0);
  });

  it('refuses an async body and rolls back what it did synchronously', async () => {
    assert.throws(
      () =>
        t.store.transaction(async (tx) => {
          await tx.setSetting('k', 'v');
        }),
      /cannot return a promise/,
    );
    assert.equal(await t.store.getSetting('k'), undefined);
  });
});
