/**
 * Tunnel address backfill at start-up (issue 24): devices without an address get one in a single pass,
 * on both engines. The backfill used to allocate device by device, each allocation re-reading every taken
 * address (quadratic: ~50 s of blocked event loop at 10k devices); the checks here count store calls, not
 * time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressPool, AddressService } from '../../../src/services/addresses.js';
import { SqliteStore, type CertRecord, type Store, type TxStore } from '../../../src/store/index.js';
import { ipv4ToInt } from '../../../src/lib/cidr.js';
import { freshPgStore } from '../../helpers/pg-store.js';

type Opened = { store: Store; cleanup(): Promise<void> };

const ENGINES: Record<string, () => Promise<Opened>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podgate-backfill-'));
    const store = SqliteStore.open(join(dir, 'podgate.db'));
    return {
      store,
      cleanup: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  postgres: async () => {
    const { store } = await freshPgStore(4);
    return { store, cleanup: () => store.close() };
  },
};

/** The store with every method call counted, including calls on the handle of a transaction. */
function counted<S extends TxStore>(inner: S, calls: string[]): S {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        if (prop === 'transaction') {
          const fn = args[0] as (tx: TxStore) => Promise<unknown>;
          return (v as (f: typeof fn) => Promise<unknown>).call(target, (tx) => fn(counted(tx, calls)));
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

const device = (commonName: string) => ({ commonName }) as CertRecord;

for (const [engine, open] of Object.entries(ENGINES)) {
  describe(`tunnel address backfill on ${engine}`, function () {
    this.timeout(120_000);
    let o: Opened;
    beforeEach(async () => {
      o = await open();
    });
    afterEach(() => o.cleanup());

    it('1,000 devices without an address: distinct pool addresses in a constant number of store calls', async () => {
      const at = new Date('2026-12-06T00:00:00.000Z');
      const subnet = '10.140.0.0/20';
      const pool = addressPool(subnet);
      await o.store.allocateAddress('held-before', pool, at);
      const calls: string[] = [];
      const service = new AddressService({
        store: counted(o.store, calls),
        clientSubnet: subnet,
        graceDays: 30,
        now: () => at,
      });
      const names = Array.from({ length: 1000 }, (_, i) => `dev-${i}`);
      await service.backfill([device('held-before'), ...names.map(device)]);

      const all = await o.store.listAddresses();
      assert.equal(all.length, 1001, 'every device has an address');
      assert.equal(new Set(all.map((a) => a.address)).size, 1001, 'no address twice');
      for (const a of all) {
        const n = ipv4ToInt(a.address);
        assert.ok(n >= pool.first && n <= pool.last, `${a.address} in the pool`);
      }
      assert.equal((await o.store.getAddress('held-before'))?.address, '10.140.0.2', 'kept');
      assert.equal((await o.store.getAddress('dev-0'))?.address, '10.140.0.3', 'lowest free first');
      assert.ok(calls.length <= 3, `one pass, not one store call per device: ${calls.length} calls`);
    });

    it('allocateAddresses: kept, replaced outside the pool, lowest free, refused when full', async () => {
      const at = new Date('2026-12-06T00:00:00.000Z');
      const wide = { subnet: '10.140.0.0/24', first: 0x0a8c0002, last: 0x0a8c00fd };
      const narrow = { subnet: '10.140.0.0/29', first: 0x0a8c0002, last: 0x0a8c0005 };
      await o.store.allocateAddress('a', wide, at); // .2
      await o.store.allocateAddress('b', wide, at); // .3
      await o.store.allocateAddress('outside', { ...wide, first: 0x0a8c0010 }, at); // .16
      const r = await o.store.allocateAddresses(['b', 'outside', 'c', 'c', 'd', 'e'], narrow, at);
      assert.deepEqual(
        r.allocated.map((a) => `${a.commonName} ${a.address}`),
        ['b 10.140.0.3', 'outside 10.140.0.4', 'c 10.140.0.5'],
      );
      assert.deepEqual(r.refused, ['d', 'e']);
      assert.equal(r.allocated[1].allocatedAt.toISOString(), at.toISOString());
      assert.deepEqual(
        (await o.store.listAddresses()).map((a) => `${a.commonName} ${a.address}`),
        ['a 10.140.0.2', 'b 10.140.0.3', 'outside 10.140.0.4', 'c 10.140.0.5'],
      );
      assert.equal(await o.store.getAddress('d'), undefined, 'no row for a refused name');
      await assert.rejects(o.store.allocateAddresses([''], narrow, at), { status: 400 });
    });
  });
}
