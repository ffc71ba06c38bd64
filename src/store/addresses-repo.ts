import type { Database, Statement } from 'better-sqlite3';
import { Conflict } from '../lib/errors.js';
import { intToIpv4, ipv4ToInt } from '../lib/cidr.js';
import { fromIso, nonEmpty, sqliteCode, type Tx, type Sync } from './sql-util.js';

/** A device's stable tunnel address (keyed by common name: a common name belongs to one owner for ever). */
export interface DeviceAddress {
  commonName: string;
  address: string;
  allocatedAt: Date;
}

/** The addresses a pool may hand out, as unsigned 32-bit integers (inclusive), and its name for messages. */
export interface AddressPool {
  subnet: string;
  first: number;
  last: number;
}

export interface AddressStore {
  getAddress(commonName: string): Promise<DeviceAddress | undefined>;
  /** Sorted by address. */
  listAddresses(): Promise<DeviceAddress[]>;
  /**
   * The device's address: the one it holds when that lies in `pool`, else the lowest free one of the
   * pool (an address held outside the pool, after vpn.clientSubnet changed, is replaced). Conflict
   * (409, field vpn.clientSubnet) when the pool is full. Unique in the table: never two devices.
   */
  allocateAddress(commonName: string, pool: AddressPool, at: Date): Promise<DeviceAddress>;
  /**
   * `allocateAddress` for many devices (it is this walk for one name) in one transaction that reads the taken addresses once (the
   * start-up backfill: one pass, not one table read per device). Names that hold an address in the
   * pool keep it; `refused` lists the names the pool had no room for (they get no row).
   */
  allocateAddresses(commonNames: readonly string[], pool: AddressPool, at: Date): Promise<BulkAllocation>;
  /** Returns whether a row was removed. */
  releaseAddress(commonName: string): Promise<boolean>;
}

/** What `allocateAddresses` did: one address per served name, in the order given, and the names left without. */
export interface BulkAllocation {
  allocated: DeviceAddress[];
  refused: string[];
}

/**
 * Plans a bulk allocation from the table read once: which rows to drop (held outside the pool), which
 * to insert (the lowest free addresses, in the order of the names), which names keep their row and
 * which are refused. One forward walk over the pool, so linear in pool + names.
 */
export function planAllocation(
  commonNames: readonly string[],
  pool: AddressPool,
  rows: readonly DeviceAddress[],
  at: Date,
): { drop: string[]; insert: DeviceAddress[]; kept: Map<string, DeviceAddress>; refused: string[] } {
  const byName = new Map(rows.map((r) => [r.commonName, r]));
  const used = new Set(rows.map((r) => ipv4ToInt(r.address)));
  const drop: string[] = [];
  const insert: DeviceAddress[] = [];
  const kept = new Map<string, DeviceAddress>();
  const refused: string[] = [];
  let next = pool.first;
  for (const cn of new Set(commonNames)) {
    const held = byName.get(cn);
    if (held) {
      const n = ipv4ToInt(held.address);
      if (n >= pool.first && n <= pool.last) {
        kept.set(cn, held);
        continue;
      }
      // replaced, like allocateAddress; its old address stays taken in this pass (it may be outside anyway)
      drop.push(cn);
    }
    while (next <= pool.last && used.has(next)) next++;
    if (next > pool.last) {
      refused.push(cn);
      continue;
    }
    used.add(next);
    insert.push({ commonName: cn, address: intToIpv4(next), allocatedAt: at });
  }
  return { drop, insert, kept, refused };
}

/** 409 when the pool has no address left for a device (field vpn.clientSubnet: widen it, or revoke). */
export function poolFull(pool: AddressPool): Conflict {
  return new Conflict(
    `vpn.clientSubnet ${pool.subnet} has no free tunnel address left (${pool.last - pool.first + 1} usable, all held by devices); revoke devices or widen the subnet`,
    'vpn.clientSubnet',
  );
}

/** 409 when the unique address index refused a planned address (another writer got past the lock). */
export function addressTaken(): Conflict {
  return new Conflict('a tunnel address is already held by another device', 'address');
}

/** `allocateAddress` on both engines, from the bulk walk for one name: its address, or pool-full. */
export function onlyAddress(result: BulkAllocation, pool: AddressPool): DeviceAddress {
  const a = result.allocated[0];
  if (!a) throw poolFull(pool);
  return a;
}

/** A device_addresses row, as both engines return it. */
export interface AddressRow {
  common_name: string;
  address: string;
  allocated_at: string;
}

/**
 * The rows as DeviceAddresses in address order (what listAddresses returns on both engines). Each key is
 * computed once: parsing both addresses in the comparator (n log n parses) made listing 10,000
 * addresses allocate ~12 MB, twice per access bundle.
 */
export function byAddress(rows: readonly AddressRow[]): DeviceAddress[] {
  return rows
    .map((r) => ({ key: ipv4ToInt(r.address), a: toAddress(r) }))
    .sort((x, y) => x.key - y.key)
    .map((x) => x.a);
}

export const toAddress = (r: AddressRow): DeviceAddress => ({
  commonName: r.common_name,
  address: r.address,
  allocatedAt: fromIso(r.allocated_at),
});

/** The device_addresses table. */
export class SqliteAddresses implements Sync<AddressStore> {
  private readonly get: Statement;
  private readonly all: Statement;
  private readonly taken: Statement;
  private readonly insert: Statement;
  private readonly remove: Statement;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    this.get = db.prepare('SELECT * FROM device_addresses WHERE common_name = ?');
    this.all = db.prepare('SELECT * FROM device_addresses');
    this.taken = db.prepare('SELECT address FROM device_addresses').pluck();
    this.insert = db.prepare(
      'INSERT INTO device_addresses (common_name, address, allocated_at) VALUES (?, ?, ?)',
    );
    this.remove = db.prepare('DELETE FROM device_addresses WHERE common_name = ?');
  }

  getAddress(commonName: string): DeviceAddress | undefined {
    const r = this.get.get(commonName) as AddressRow | undefined;
    return r && toAddress(r);
  }

  listAddresses(): DeviceAddress[] {
    return byAddress(this.all.all() as AddressRow[]);
  }

  allocateAddress(commonName: string, pool: AddressPool, at: Date): DeviceAddress {
    return onlyAddress(this.allocateAddresses([commonName], pool, at), pool);
  }

  allocateAddresses(commonNames: readonly string[], pool: AddressPool, at: Date): BulkAllocation {
    const names = commonNames.map((cn) => nonEmpty('commonName', cn));
    return this.tx(() => {
      const plan = planAllocation(names, pool, (this.all.all() as AddressRow[]).map(toAddress), at);
      for (const cn of plan.drop) this.remove.run(cn);
      const made = new Map<string, DeviceAddress>();
      for (const a of plan.insert) {
        try {
          this.insert.run(a.commonName, a.address, at.toISOString());
        } catch (err) {
          // the table's UNIQUE(address) is the last word if anything ever raced past the plan
          if (sqliteCode(err) === 'SQLITE_CONSTRAINT_UNIQUE') throw addressTaken();
          throw err;
        }
        made.set(a.commonName, { ...a, allocatedAt: fromIso(at.toISOString()) });
      }
      const allocated = [...new Set(names)].flatMap((cn) => {
        const a = plan.kept.get(cn) ?? made.get(cn);
        return a ? [a] : [];
      });
      return { allocated, refused: plan.refused };
    });
  }

  releaseAddress(commonName: string): boolean {
    return this.remove.run(commonName).changes > 0;
  }
}
