/**
 * Which pod last held each pod address, so that an address taken over by another pod is noticed. Pure.
 *
 * Why: a pod address is reused as soon as its pod is gone, and the new pod has another MAC address. The
 * server pod sends to pod addresses on its own link (one node's bridge), so its neighbour (ARP/NDP)
 * cache may still hold the old pod's MAC: until that entry ages out (the kernel's reachable time, 15–45 s,
 * then delay and probes) every packet to the new pod goes to the old MAC and is lost, unless the new
 * pod announced itself (a gratuitous ARP, which not every CNI plugin sends). The agent forgets the
 * entries of the addresses this returns, so the next packet asks afresh.
 */
import type { ClusterEvent } from './types.js';

export class AddressHolders {
  /** Address → uid of the pod that last had it (kept after that pod is gone: that is the point). */
  private readonly holders = new Map<string, string>();

  /**
   * Records the addresses of a pod upsert; returns those that another pod held before (the same pod
   * seen again, and an address seen for the first time, return nothing). Other events return nothing.
   * Bounded by the number of pod addresses the cluster hands out.
   */
  take(e: ClusterEvent): string[] {
    if (e.type !== 'upsert' || e.kind !== 'pod') return [];
    const taken: string[] = [];
    for (const ip of e.object.ips) {
      const before = this.holders.get(ip);
      if (before !== undefined && before !== e.object.uid) taken.push(ip);
      this.holders.set(ip, e.object.uid);
    }
    return taken;
  }
}
