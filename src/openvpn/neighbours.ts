/**
 * The neighbour (ARP/NDP) cache of the network namespace this process runs in (the server pod's), through
 * iproute2. Why the agent forgets entries: access/address-holders.ts.
 */
import { isIpAddress } from '../access/elements.js';
import { exec } from '../lib/exec.js';

/** What the access agent needs of the neighbour cache. */
export interface NeighbourCache {
  /** Drops the entries of these addresses (either family; none there is fine), so the next packet asks. */
  forget(addresses: readonly string[]): Promise<void>;
}

/** `ip -batch -` with one `neigh flush to <address>` per address (one process for a batch of events). */
export class IpNeighbours implements NeighbourCache {
  /** `namespace`: a named network namespace (`ip -n`) instead of this process's own (tests). */
  constructor(private readonly namespace?: string) {}

  async forget(addresses: readonly string[]): Promise<void> {
    // addresses come from pod status: only plain addresses reach iproute2's batch text
    const valid = [...new Set(addresses)].filter(isIpAddress);
    if (valid.length === 0) return;
    const where = this.namespace === undefined ? [] : ['-n', this.namespace];
    await exec(['ip', ...where, '-batch', '-'], {
      input: valid.map((a) => `neigh flush to ${a}\n`).join(''),
      timeoutMs: 10_000,
    });
  }
}
