import assert from 'node:assert/strict';
import { expectAppError, tempStore, type TempStore } from './temp-store.js';

const crl = (number: number) => ({
  number,
  pem: `-----BEGIN X509 CRL-----\n${number}\n-----END X509 CRL-----\n`,
  thisUpdate: new Date('2026-06-01T00:00:00.000Z'),
  nextUpdate: new Date('2026-07-01T00:00:00.000Z'),
});

describe('store: CRL state, settings, cluster snapshot', () => {
  let t: TempStore;
  beforeEach(() => {
    t = tempStore();
  });
  afterEach(() => t.cleanup());

  it('saves and replaces the single CRL row', async () => {
    assert.equal(await t.store.getCrl(), undefined);
    await t.store.saveCrl(crl(1));
    assert.deepEqual(await t.store.getCrl(), crl(1));
    await t.store.saveCrl(crl(2));
    assert.deepEqual(await t.store.getCrl(), crl(2));
    assert.equal((t.raw().prepare('SELECT count(*) AS n FROM crl_state').get() as { n: number }).n, 1);
  });

  it('409 a CRL number that does not increase (two writers cannot both publish N+1)', async () => {
    await t.store.saveCrl(crl(5));
    await expectAppError(() => t.store.saveCrl(crl(5)), 'Conflict', 'number');
    await expectAppError(() => t.store.saveCrl(crl(4)), 'Conflict', 'number');
    assert.equal((await t.store.getCrl())?.number, 5);
  });

  it('400 nextUpdate not after thisUpdate', async () => {
    await expectAppError(
      () => t.store.saveCrl({ ...crl(1), nextUpdate: crl(1).thisUpdate }),
      'BadRequest',
      'nextUpdate',
    );
    assert.equal(await t.store.getCrl(), undefined);
  });

  it('settings: get, set, overwrite', async () => {
    assert.equal(await t.store.getSetting('k'), undefined);
    await t.store.setSetting('k', 'v1');
    await t.store.setSetting('k', 'v2');
    await t.store.setSetting('empty', '');
    assert.equal(await t.store.getSetting('k'), 'v2');
    assert.equal(await t.store.getSetting('empty'), '');
  });

  it('cluster snapshot round-trips through settings', async () => {
    assert.equal(await t.store.getClusterSnapshot(), undefined);
    const s = {
      discoveredAt: new Date('2026-06-01T00:00:00.000Z'),
      data: { podCidrs: ['10.244.0.0/16'], dns: '10.96.0.10' },
    };
    await t.store.saveClusterSnapshot(s);
    assert.deepEqual(await t.store.getClusterSnapshot(), s);
  });
});
