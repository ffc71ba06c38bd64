import { createHash } from 'node:crypto';
import { contains, parseCidr, type Cidr } from '../lib/cidr.js';
import type { PortRange, ResolvedRule } from './types.js';

/**
 * The set elements one rule yields, in the shape nftables takes them. Pure: no I/O.
 *
 * Each rule owns three logical sets (names from {@link ruleSetId}):
 * - `<id>_c` client tunnel addresses;
 * - `<id>_p` destinations with protocol and port range (address . inet_proto . inet_service,
 *   intervals): Service ports, and everything when the rule names a protocol or ports;
 * - `<id>_a` destinations on any protocol and port (intervals): pods, namespaces and CIDRs when the
 *   rule restricts nothing.
 * Elements of both families share a logical set here; the nft renderer puts IPv6 ones into the
 * set's `6` twin (`<id>_c6`, `<id>_p6`, `<id>_a6`, type `ipv6_addr`), since an nft set holds one family.
 */

export type L4 = 'tcp' | 'udp' | 'sctp' | 'icmp';

export interface PortElement {
  /** An address or a CIDR of either family ("10.0.0.0/8", "fd00:10:244::/56"). */
  addr: string;
  proto: L4;
  from: number;
  to: number;
}

export type SetKind = 'c' | 'p' | 'a';

/** Key of a port element, unique per set; also what {@link parsePortKey} reads back. */
export function portKey(e: PortElement): string {
  return `${e.addr}|${e.proto}|${e.from}-${e.to}`;
}

export function parsePortKey(key: string): PortElement {
  const [addr, proto, range] = key.split('|') as [string, L4, string];
  const [from, to] = range.split('-').map(Number) as [number, number];
  return { addr, proto, from, to };
}

/** Set-name stem of a rule: stable across bundles (from the name), and a valid nftables identifier. */
export function ruleSetId(ruleName: string): string {
  return `r${createHash('sha256').update(ruleName).digest('hex').slice(0, 12)}`;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(s: string): boolean {
  return IPV4.test(s);
}

const HEX_COLON = /^[0-9a-fA-F:]{2,39}$/;
const GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * A plain IPv6 address in hex groups (no zone, no prefix, no embedded IPv4), as the API server writes
 * pod IPs and ClusterIPs. Checked without a parser: it runs for every address of every pod event.
 */
export function isIpv6(s: string): boolean {
  if (!HEX_COLON.test(s)) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = halves.map((h) => (h === '' ? [] : h.split(':')));
  if (!groups.every((g) => g.every((x) => GROUP.test(x)))) return false;
  const n = groups.reduce((a, g) => a + g.length, 0);
  return halves.length === 2 ? n <= 7 : n === 8;
}

/** An address of either family an nft element may carry. */
export function isIpAddress(s: string): boolean {
  return isIpv4(s) || isIpv6(s);
}

/** True for an IPv6 element key (an address, a CIDR or a {@link portKey}): it goes to the `6` set. */
export function isIpv6Key(key: string): boolean {
  return key.includes(':');
}

/** Sorts and merges overlapping or adjacent port ranges; empty input stays empty (= every port). */
export function mergePorts(ports: readonly PortRange[]): PortRange[] {
  const sorted = [...ports].map((p) => ({ from: p.from, to: p.to })).sort((a, b) => a.from - b.from);
  const out: PortRange[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last && p.from <= last.to + 1) last.to = Math.max(last.to, p.to);
    else out.push(p);
  }
  return out;
}

/** What a rule's protocol and ports leave of "every address of this destination". */
export interface RuleShape {
  /** True when the rule restricts nothing: whole addresses go to the any-set. */
  anything: boolean;
  protos: L4[];
  /** Merged, disjoint; [0-65535] when the rule names no ports. */
  ranges: PortRange[];
  /** CIDR destinations (either family, none nested in another): k8s addresses inside them add nothing. */
  cidrs: Cidr[];
}

const ALL_PORTS: PortRange = { from: 0, to: 65535 };

export function ruleShape(rule: ResolvedRule): RuleShape {
  const ports = mergePorts(rule.ports);
  const anything = rule.protocol === 'any' && ports.length === 0;
  let protos: L4[];
  if (rule.protocol === 'any') protos = ['tcp', 'udp', 'sctp'];
  else protos = [rule.protocol];
  const ranges = rule.protocol === 'icmp' || ports.length === 0 ? [ALL_PORTS] : ports;
  const all = rule.destinations.flatMap((d, i) =>
    d.kind === 'cidr' ? [parseCidr(`destinations[${i}].cidr`, d.cidr)] : [],
  );
  // CIDRs either nest or are disjoint: dropping the nested ones leaves disjoint intervals (contains()
  // is false across families, so each family is reduced on its own).
  const cidrs = all.filter(
    (c, i) =>
      !all.some(
        (o, j) => j !== i && o.prefix <= c.prefix && contains(o, c.network) && (o.prefix < c.prefix || j < i),
      ),
  );
  return { anything, protos, ranges, cidrs };
}

/** True when a CIDR destination of the same rule already covers `ip` (it grants at least as much). */
export function coveredByCidr(shape: RuleShape, ip: string): boolean {
  return shape.cidrs.some((c) => contains(c, ip));
}

/** Elements for "every port (as the rule allows) of `addr`": one any-element or port elements. */
export function wholeAddress(shape: RuleShape, addr: string): { p: PortElement[]; a: string[] } {
  if (shape.anything) return { p: [], a: [addr] };
  const p: PortElement[] = [];
  for (const proto of shape.protos) for (const r of shape.ranges) p.push({ addr, proto, ...r });
  return { p, a: [] };
}

/** Elements for a ClusterIP: each Service port the rule's protocol and ports let through. */
export function servicePorts(
  shape: RuleShape,
  ip: string,
  ports: readonly { protocol: string; port: number }[],
): PortElement[] {
  const out: PortElement[] = [];
  for (const sp of ports) {
    const proto = sp.protocol.toLowerCase() as L4;
    if (!shape.anything) {
      if (!shape.protos.includes(proto)) continue;
      if (!shape.ranges.some((r) => sp.port >= r.from && sp.port <= r.to)) continue;
    }
    out.push({ addr: ip, proto, from: sp.port, to: sp.port });
  }
  return out;
}
