import { Conflict } from '../lib/errors.js';
import { holdingRange, ipv4Bounds, parseCidr } from '../lib/cidr.js';
import { logger } from '../lib/logger.js';
import type { AddressPool, CertRecord, DeviceAddress, Store, TxStore } from '../store/types.js';

const log = logger.child({ module: 'addresses' });
const DAY = 86_400_000;

/**
 * The pool of tunnel addresses devices get from vpn.clientSubnet: every host address except the
 * network address, the server's own (the first host: openvpn's `server` directive takes it) and the
 * broadcast. Conflict (409) for a subnet with no address left for a client (/30 and smaller).
 */
export function addressPool(clientSubnet: string): AddressPool {
  const cidr = parseCidr('vpn.clientSubnet', clientSubnet);
  if (cidr.family !== 'ipv4')
    throw new Conflict(
      `vpn.clientSubnet ${cidr.text} is not IPv4: tunnel addresses are IPv4`,
      'vpn.clientSubnet',
    );
  const { network, broadcast } = ipv4Bounds(cidr);
  const holding = holdingRange(cidr.text);
  const pool = { subnet: cidr.text, first: network + 2, last: (holding?.first ?? broadcast) - 1 };
  if (pool.first > pool.last)
    throw new Conflict(`vpn.clientSubnet ${cidr.text} has no address for a client`, 'vpn.clientSubnet');
  return pool;
}

export interface AddressServiceDeps {
  store: Store;
  clientSubnet: string;
  /** vpn.renewGraceDays: how long an address outlives the device's last valid certificate. */
  graceDays: number;
  now: () => Date;
}

/** When a certificate stopped being valid: its revocation or its expiry, whichever came first. */
function validUntil(c: Pick<CertRecord, 'notAfter' | 'revokedAt'>): number {
  const end = c.notAfter.getTime();
  return c.revokedAt ? Math.min(end, c.revokedAt.getTime()) : end;
}

/**
 * Stable tunnel addresses: one per device (common name), allocated in the same transaction as the
 * device's certificate row, kept across renewals, reconnects and restarts, and freed by `sweep` once
 * the device has had no valid certificate for the grace period.
 */
export class AddressService {
  constructor(private readonly deps: AddressServiceDeps) {}

  pool(): AddressPool {
    return addressPool(this.deps.clientSubnet);
  }

  /** The device's address, allocating one; call inside the transaction that records its certificate. */
  allocate(commonName: string, tx: TxStore): Promise<DeviceAddress> {
    return tx.allocateAddress(commonName, this.pool(), this.deps.now());
  }

  /** Throws the 409 before any key is made when the pool has no room for a device without an address. */
  async assertRoomFor(commonName: string): Promise<void> {
    const { store } = this.deps;
    if (await store.getAddress(commonName)) return;
    const pool = this.pool();
    const held = (await store.listAddresses()).length;
    if (held < pool.last - pool.first + 1) return;
    // a full table may still hold addresses outside the pool (subnet changed): the allocator decides
    try {
      await store.transaction(async (tx) => {
        await tx.allocateAddress(commonName, pool, this.deps.now());
        throw new RollBack();
      });
    } catch (err) {
      if (!(err instanceof RollBack)) throw err;
    }
  }

  get(commonName: string): Promise<DeviceAddress | undefined> {
    return this.deps.store.getAddress(commonName);
  }

  list(): Promise<DeviceAddress[]> {
    return this.deps.store.listAddresses();
  }

  /**
   * Gives every currently valid client or gateway certificate without an address one (certificates
   * issued before addresses existed). Devices the pool has no room for stay without (and cannot
   * connect in `enforce`); they are logged.
   */
  async backfill(
    valid: readonly Pick<CertRecord, 'commonName'>[],
    store: TxStore = this.deps.store,
  ): Promise<Map<string, string>> {
    // returned (common name -> address, as the table now holds them): the bundle reads them once
    const held = new Map((await store.listAddresses()).map((a) => [a.commonName, a.address]));
    const missing = valid.filter((c) => !held.has(c.commonName));
    if (missing.length === 0) return held;
    // one store call: a transaction that reads the taken addresses once (one read per device was
    // quadratic and froze serve's start-up for tens of seconds at 10k devices)
    const { allocated, refused } = await store.allocateAddresses(
      missing.map((c) => c.commonName),
      this.pool(),
      this.deps.now(),
    );
    for (const a of allocated) held.set(a.commonName, a.address);
    for (const commonName of refused)
      log.warn(
        { commonName, err: `vpn.clientSubnet ${this.deps.clientSubnet} has no free tunnel address left` },
        'no tunnel address for a device',
      );
    return held;
  }

  /**
   * Frees the addresses of devices that have had no valid certificate for `graceDays` (revoked or
   * expired, and not renewed). Decided inside one write transaction with the certificate rows, so an
   * issue racing the sweep either keeps the address or allocates afresh. Returns the freed common names.
   */
  async sweep(): Promise<string[]> {
    const { store, graceDays } = this.deps;
    const now = this.deps.now().getTime();
    const freed = await store.transaction(async (tx) => {
      const out: string[] = [];
      const byName = new Map<string, CertRecord[]>();
      for (const c of (await tx.listCerts()).items)
        byName.set(c.commonName, [...(byName.get(c.commonName) ?? []), c]);
      for (const a of await tx.listAddresses()) {
        const certs = byName.get(a.commonName) ?? [];
        if (certs.some((c) => c.status === 'valid' && c.notAfter.getTime() > now)) continue;
        const lastValid = Math.max(0, ...certs.map(validUntil));
        if (lastValid + graceDays * DAY > now) continue;
        await tx.releaseAddress(a.commonName);
        await tx.appendAudit({
          actor: 'system',
          action: 'address.release',
          target: a.commonName,
          result: 'ok',
          details: { address: a.address, graceDays },
        });
        out.push(a.commonName);
      }
      return out;
    });
    if (freed.length > 0) log.info({ freed }, 'tunnel addresses freed after the grace period');
    return freed;
  }
}

/** Thrown to roll a probing transaction back. */
class RollBack extends Error {}
