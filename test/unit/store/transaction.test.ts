import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import type { TxStore } from '../../../src/store/types.js';
import { newCert, tempStore, type TempStore } from './temp-store.js';

/** A promise and the function that settles it: lets a test hold a transaction open across awaits. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Rejects with an AppError carrying this code. */
const withCode = (code: string) => (e: unknown) => (e as { code?: string }).code === code;

describe('store: transaction', () => {
  let t: TempStore;
  beforeEach(() => {
    t = tempStore();
  });
  afterEach(() => t.cleanup());

  it('returns the value and commits', async () => {
    const serial = await t.store.transaction(async (tx) => (await tx.insertCert(newCert())).serial);
    assert.ok(await t.store.getCert(serial));
  });

  it('a throw rolls back every write, including the audit row, and rethrows the same error', async () => {
    const boom = new Error('boom');
    let serial = '';
    await assert.rejects(
      t.store.transaction(async (tx) => {
        serial = (await tx.insertCert(newCert())).serial;
        await tx.appendAudit({ actor: 'a', action: 'cert.issue', target: serial, result: 'ok', details: {} });
        await tx.setSetting('k', 'v');
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.notEqual(serial, '');
    assert.equal(await t.store.getCert(serial), undefined);
    assert.equal((await t.store.listAudit()).length, 0);
    assert.equal(await t.store.getSetting('k'), undefined);
    // and nothing reached the file either
    assert.equal((t.raw().prepare('SELECT count(*) AS n FROM certificates').get() as { n: number }).n, 0);
  });

  it('a concurrent call on the store waits for the open transaction instead of joining it', async () => {
    const g = gate();
    const entered = gate();
    const txDone = t.store.transaction(async (tx) => {
      await tx.setSetting('inside', 'tx');
      entered.open();
      await g.wait;
      throw new Error('rolled back');
    });
    await entered.wait;
    let outsideDone = false;
    const outside = t.store.setSetting('outside', 'written').then(() => (outsideDone = true));
    let readDone = false;
    const read = t.store.getSetting('inside').then((v) => ((readDone = true), v));
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(outsideDone, false, 'the write waited while the transaction was open');
    assert.equal(readDone, false, 'the read waited too (it would see uncommitted rows)');
    g.open();
    await assert.rejects(txDone, /rolled back/);
    await outside;
    // Had the write run inside the transaction, the rollback would have taken it away.
    assert.equal(await t.store.getSetting('outside'), 'written');
    assert.equal(await t.store.getSetting('inside'), undefined);
    assert.equal(await read, undefined, 'the read ran after the rollback');
  });

  it('queued transactions and calls run first come, first served', async () => {
    const order: string[] = [];
    const g = gate();
    const first = t.store.transaction(async (tx) => {
      await g.wait;
      await tx.setSetting('k', '1');
      order.push('tx1');
    });
    const call = t.store.setSetting('k', '2').then(() => order.push('call'));
    const second = t.store.transaction(async (tx) => {
      order.push(`tx2 saw ${await tx.getSetting('k')}`);
      await tx.setSetting('k', '3');
    });
    g.open();
    await Promise.all([first, call, second]);
    assert.deepEqual(order, ['tx1', 'call', 'tx2 saw 2']);
    assert.equal(await t.store.getSetting('k'), '3');
  });

  it('refuses a call on the store itself from inside the function (store_in_tx), without deadlock', async () => {
    await t.store.transaction(async (tx) => {
      await tx.setSetting('a', '1');
      await assert.rejects(t.store.getSetting('a'), withCode('store_in_tx'));
      await assert.rejects(t.store.setSetting('b', '2'), withCode('store_in_tx'));
      await assert.rejects(
        t.store.transaction(async () => undefined),
        withCode('store_in_tx'),
      );
    });
    // the refusals left the transaction usable: it committed
    assert.equal(await t.store.getSetting('a'), '1');
    assert.equal(await t.store.getSetting('b'), undefined);
  });

  it('refuses a handle used after its transaction ended (store_tx_ended)', async () => {
    let kept: TxStore | undefined;
    await t.store.transaction(async (tx) => {
      kept = tx;
      await tx.setSetting('a', '1');
    });
    await assert.rejects(kept!.setSetting('a', '2'), withCode('store_tx_ended'));
    assert.equal(await t.store.getSetting('a'), '1');
  });

  it('nested transactions: an inner failure caught by the outer one rolls back only the inner part', async () => {
    await t.store.transaction(async (tx) => {
      await tx.insertCert(newCert({ commonName: 'outer' }));
      await assert.rejects(
        tx.transaction(async (inner) => {
          await inner.insertCert(newCert({ commonName: 'inner' }));
          throw new Error('inner');
        }),
        /inner/,
      );
      await tx.insertCert(newCert({ commonName: 'after' }));
    });
    assert.deepEqual(
      (await t.store.listCerts({ sort: 'commonName' })).items.map((c) => c.commonName),
      ['after', 'outer'],
    );
  });

  it('nested transactions: an outer failure rolls back the released inner part too', async () => {
    await assert.rejects(
      t.store.transaction(async (tx) => {
        await tx.transaction(async (inner) => inner.insertCert(newCert({ commonName: 'inner' })));
        throw new Error('outer');
      }),
      /outer/,
    );
    assert.equal((await t.store.listCerts()).total, 0);
  });

  it('nested transactions on one handle run one after the other, each its own savepoint', async () => {
    const order: string[] = [];
    const g = gate();
    await t.store.transaction(async (tx) => {
      const a = tx.transaction(async (inner) => {
        order.push('a start');
        await g.wait;
        await inner.setSetting('a', '1');
        order.push('a end');
        throw new Error('a fails');
      });
      const b = tx.transaction(async (inner) => {
        order.push('b start');
        await inner.setSetting('b', '1');
      });
      g.open();
      const [ra, rb] = await Promise.allSettled([a, b]);
      assert.equal(ra.status, 'rejected');
      assert.equal(rb.status, 'fulfilled');
    });
    assert.deepEqual(order, ['a start', 'a end', 'b start']);
    assert.equal(await t.store.getSetting('a'), undefined, 'the failed savepoint was rolled back');
    assert.equal(await t.store.getSetting('b'), '1');
  });

  it('a child handle is refused once its savepoint ended', async () => {
    await t.store.transaction(async (tx) => {
      let kept: TxStore | undefined;
      await tx.transaction(async (inner) => {
        kept = inner;
      });
      await assert.rejects(kept!.getSetting('a'), withCode('store_tx_ended'));
    });
  });
});
