import type { Config } from '../config/schema.js';
import { overlaps, parseCidr, type Cidr } from '../lib/cidr.js';

/** The discovered ranges the overlap check needs (a DiscoveryResult has them). */
export interface DiscoveredRanges {
  podCidrs: string[];
  serviceCidrs: string[];
  podCidrSource: string;
  serviceCidrSource: string;
}

/**
 * Overlaps between ranges that must stay apart: the VPN client subnets, the office LANs, and the
 * pod and service ranges (config values override discovery). Each message names both ranges.
 */
export function findRangeOverlaps(config: Config, d: DiscoveredRanges | undefined): string[] {
  const pods =
    config.vpn.routes.pods.length > 0
      ? { list: config.vpn.routes.pods, from: 'vpn.routes.pods' }
      : { list: d?.podCidrs ?? [], from: d?.podCidrSource ?? '' };
  const svcs =
    config.vpn.routes.services.length > 0
      ? { list: config.vpn.routes.services, from: 'vpn.routes.services' }
      : { list: d?.serviceCidrs ?? [], from: d?.serviceCidrSource ?? '' };
  const groups: { name: string; cidrs: Cidr[] }[] = [
    { name: 'vpn.clientSubnet', cidrs: [parseCidr('vpn.clientSubnet', config.vpn.clientSubnet)] },
    {
      name: 'vpn.clientSubnet6',
      cidrs: config.vpn.clientSubnet6 ? [parseCidr('vpn.clientSubnet6', config.vpn.clientSubnet6)] : [],
    },
    { name: `pod CIDR (${pods.from})`, cidrs: pods.list.map((c) => parseCidr('pod CIDR', c)) },
    { name: `service CIDR (${svcs.from})`, cidrs: svcs.list.map((c) => parseCidr('service CIDR', c)) },
    { name: 'vpn.officeLans', cidrs: config.vpn.officeLans.map((c) => parseCidr('vpn.officeLans', c)) },
  ];
  const problems: string[] = [];
  for (let i = 0; i < groups.length; i++) {
    for (let j = i + 1; j < groups.length; j++) {
      for (const a of groups[i]!.cidrs) {
        for (const b of groups[j]!.cidrs) {
          if (overlaps(a, b))
            problems.push(`${groups[i]!.name} ${a.text} overlaps ${groups[j]!.name} ${b.text}`);
        }
      }
    }
  }
  return problems;
}
