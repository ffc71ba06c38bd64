import assert from 'node:assert/strict';
import { expectAppError, newCert, tempStore, type TempStore } from './temp-store.js';

describe('store: agent pending revocations', () => {
  let t: TempStore;
  beforeEach(() => {
    t = tempStore();
  });
  afterEach(() => t.cleanup());

  it('queues, keeps first queuedAt and highest CRL number, lists oldest first, clears', async () => {
    const t0 = new Date('2026-06-01T00:00:00.000Z');
    const t1 = new Date('2026-06-01T00:00:05.000Z');
    await t.store.addPending({ serial: 'BB', commonName: 'bob', crlNumber: 4, queuedAt: t1 });
    await t.store.addPending({ serial: 'AA', commonName: 'alice', crlNumber: 3, queuedAt: t0 });
    await t.store.addPending({ serial: 'AA', commonName: 'alice', crlNumber: 5, queuedAt: t1 });
    await t.store.addPending({ serial: 'AA', commonName: 'alice', crlNumber: 2, queuedAt: t1 });
    assert.deepEqual(await t.store.listPending(), [
      { serial: 'AA', commonName: 'alice', crlNumber: 5, queuedAt: t0 },
      { serial: 'BB', commonName: 'bob', crlNumber: 4, queuedAt: t1 },
    ]);
    assert.equal(await t.store.clearPending(['AA', 'ZZ']), 1);
    assert.deepEqual(
      (await t.store.listPending()).map((p) => p.serial),
      ['BB'],
    );
  });
});

describe('store: gateways', () => {
  let t: TempStore;
  beforeEach(() => {
    t = tempStore();
  });
  afterEach(() => t.cleanup());

  it('upserts by name, reads, lists sorted, deletes', async () => {
    const cert = await t.store.insertCert(newCert({ commonName: 'office-gw', kind: 'gateway' }));
    const g = {
      name: 'office',
      target: 'root@192.0.2.10:22',
      certSerial: null,
      status: 'provisioning',
      details: { step: 1 },
      updatedAt: new Date('2026-06-01T00:00:00.000Z'),
    };
    assert.deepEqual(await t.store.upsertGateway(g), g);
    const ready = { ...g, certSerial: cert.serial, status: 'ready', details: { lan: '192.168.1.0/24' } };
    assert.deepEqual(await t.store.upsertGateway(ready), ready);
    await t.store.upsertGateway({ ...g, name: 'annex' });
    assert.deepEqual(await t.store.getGateway('office'), ready);
    assert.deepEqual(
      (await t.store.listGateways()).map((x) => x.name),
      ['annex', 'office'],
    );
    await t.store.deleteGateway('annex');
    assert.equal(await t.store.getGateway('annex'), undefined);
    await expectAppError(() => t.store.deleteGateway('annex'), 'NotFound');
  });

  it('400 unknown certificate serial', async () => {
    await expectAppError(
      () =>
        t.store.upsertGateway({
          name: 'office',
          target: 'h',
          certSerial: 'ABCD',
          status: 'ready',
          details: {},
          updatedAt: new Date(),
        }),
      'BadRequest',
      'certSerial',
    );
    assert.deepEqual(await t.store.listGateways(), []);
  });
});
