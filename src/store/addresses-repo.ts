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
  /** Returns whether a row was removed. */
  releaseAddress(commonName: string): Promise<boolean>;
}

interface Row {
  common_name: string;
  address: string;
  allocated_at: string;
}

const toAddress = (r: Row): DeviceAddress => ({
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
    const r = this.get.get(commonName) as Row | undefined;
    return r && toAddress(r);
  }

  listAddresses(): DeviceAddress[] {
    return (this.all.all() as Row[])
      .map(toAddress)
      .sort((a, b) => ipv4ToInt(a.address) - ipv4ToInt(b.address));
  }

  allocateAddress(commonName: string, pool: AddressPool, at: Date): DeviceAddress {
    const cn = nonEmpty('commonName', commonName);
    return this.tx(() => {
      const held = this.getAddress(cn);
      if (held) {
        const n = ipv4ToInt(held.address);
        if (n >= pool.first && n <= pool.last) return held;
        this.remove.run(cn);
      }
      const used = new Set((this.taken.all() as string[]).map(ipv4ToInt));
      let free: number | undefined;
      for (let n = pool.first; n <= pool.last; n++) {
        if (!used.has(n)) {
          free = n;
          break;
        }
      }
      if (free === undefined) {
        throw new Conflict(
          `vpn.clientSubnet ${pool.subnet} has no free tunnel address left (${pool.last - pool.first + 1} usable, all held by devices); revoke devices or widen the subnet`,
          'vpn.clientSubnet',
        );
      }
      const address = intToIpv4(free);
      try {
        this.insert.run(cn, address, at.toISOString());
      } catch (err) {
        // the table's UNIQUE(address) is the last word if anything ever raced past the set above
        if (
          sqliteCode(err) === 'SQLITE_CONSTRAINT_UNIQUE' ||
          sqliteCode(err) === 'SQLITE_CONSTRAINT_PRIMARYKEY'
        )
          throw new Conflict(`tunnel address ${address} is already held by another device`, 'address');
        throw err;
      }
      return this.getAddress(cn) as DeviceAddress;
    });
  }

  releaseAddress(commonName: string): boolean {
    return this.remove.run(commonName).changes > 0;
  }
}
