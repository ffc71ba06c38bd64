import ipaddr from 'ipaddr.js';
import { BadRequest } from './errors.js';

/** A parsed CIDR, normalised to its network address ("10.140.0.0/16"). */
export interface Cidr {
  family: 'ipv4' | 'ipv6';
  network: string;
  prefix: number;
  /** Normalised text form, network/prefix. */
  text: string;
}

/**
 * Parses "a.b.c.d/n" (or IPv6). Rejects host bits set (a common typo that silently
 * widens a route) with a message naming the field and the value.
 */
export function parseCidr(field: string, value: unknown): Cidr {
  const quick = typeof value === 'string' ? plainIpv4Cidr(field, value) : undefined;
  if (quick) return quick;
  if (typeof value !== 'string' || !ipaddr.isValidCIDR(value.trim())) {
    throw new BadRequest(`${field}: "${String(value)}" is not a CIDR (expected e.g. 10.244.0.0/16)`, field);
  }
  const [addr, prefix] = ipaddr.parseCIDR(value.trim());
  const family = addr.kind() as 'ipv4' | 'ipv6';
  const network =
    family === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(value.trim()).toString()
      : ipaddr.IPv6.networkAddressFromCIDR(value.trim()).toString();
  if (network !== addr.toString()) {
    throw new BadRequest(
      `${field}: "${value}" has host bits set (did you mean ${network}/${prefix}?)`,
      field,
    );
  }
  return { family, network, prefix, text: `${network}/${prefix}` };
}

const PLAIN_IPV4_CIDR =
  /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\/(0|[1-9]\d?)$/;

/**
 * parseCidr for the common spelling (plain decimal IPv4, e.g. 10.140.0.0/16) without ipaddr.js: its
 * parser compiles large regular expressions on first use, a cost every CLI call paid while validating
 * the config's default ranges. Anything else (IPv6, octal or hex octets, out of range) returns
 * undefined and takes the ipaddr.js path; the answers are the same (test/unit/lib/cidr.test.ts).
 */
function plainIpv4Cidr(field: string, value: string): Cidr | undefined {
  const m = PLAIN_IPV4_CIDR.exec(value.trim());
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (prefix > 32 || octets.some((o) => o > 255)) return undefined;
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  const networkNumber = addr - (addr % size);
  const network = [24, 16, 8, 0].map((shift) => Math.floor(networkNumber / 2 ** shift) % 256).join('.');
  if (networkNumber !== addr) {
    throw new BadRequest(
      `${field}: "${value}" has host bits set (did you mean ${network}/${prefix}?)`,
      field,
    );
  }
  return { family: 'ipv4', network, prefix, text: `${network}/${prefix}` };
}

/** True when the string is a valid IPv4 or IPv6 address. */
export function isIp(value: string): boolean {
  return ipaddr.isValid(value);
}

export function parseIp(field: string, value: unknown): string {
  if (typeof value !== 'string' || !ipaddr.isValid(value)) {
    throw new BadRequest(`${field}: "${String(value)}" is not an IP address`, field);
  }
  return ipaddr.parse(value).toString();
}

/** Dotted netmask for an IPv4 prefix length (OpenVPN's `route` and `server` want it). */
export function netmask(prefix: number): string {
  return ipaddr.IPv4.subnetMaskFromPrefixLength(prefix).toString();
}

/** True when the two ranges share any address (one contains the other's network). */
export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const na = ipaddr.parse(a.network);
  const nb = ipaddr.parse(b.network);
  return na.match(nb, a.prefix) || nb.match(na, b.prefix);
}

/** True when `ip` lies inside `cidr`. */
export function contains(cidr: Cidr, ip: string): boolean {
  const addr = ipaddr.parse(ip);
  if (addr.kind() !== cidr.family) return false;
  return addr.match(ipaddr.parse(cidr.network), cidr.prefix);
}

export interface NamedCidr {
  name: string;
  cidr: Cidr;
}

/** Every overlapping pair among the named ranges, as messages naming both. */
export function findOverlaps(ranges: readonly NamedCidr[]): string[] {
  const problems: string[] = [];
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i]!;
      const b = ranges[j]!;
      if (overlaps(a.cidr, b.cidr)) {
        problems.push(`${a.name} ${a.cidr.text} overlaps ${b.name} ${b.cidr.text}`);
      }
    }
  }
  return problems;
}

/** An IPv4 address as an unsigned 32-bit integer (callers pass a valid dotted quad). */
export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.');
  // the common case (a dotted quad as podgate stores it) without a parser; anything else goes to ipaddr
  if (parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) < 256))
    return parts.reduce((n, p) => n * 256 + Number(p), 0);
  return ipaddr.IPv4.parse(ip).octets.reduce((n, o) => n * 256 + o, 0);
}

/** The dotted quad of an unsigned 32-bit integer. */
export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The first and last address of an IPv4 range, as integers. */
export function ipv4Bounds(cidr: Cidr): { network: number; broadcast: number } {
  const network = ipv4ToInt(cidr.network);
  return { network, broadcast: network + 2 ** (32 - cidr.prefix) - 1 };
}

/**
 * The top of vpn.clientSubnet kept for devices that have no client-config-dir file on a server that
 * reads one without `ccd-exclusive` (several replicas in `open` mode: a device issued a moment ago,
 * before the access bundle reached the agents). openvpn's own pool is this range only and the manager
 * never gives a device an address from it, so such a device never takes an address another device
 * holds (openvpn routes by tunnel address: two sessions with one address break both). The top eighth of
 * the subnet, at most its last /24 (broadcast excluded); none in a subnet smaller than /27.
 */
export function holdingRange(clientSubnet: string): { first: number; last: number } | undefined {
  const cidr = parseCidr('vpn.clientSubnet', clientSubnet);
  if (cidr.family !== 'ipv4') return undefined;
  const { network, broadcast } = ipv4Bounds(cidr);
  const block = Math.min(256, (broadcast - network + 1) / 8);
  if (block < 4) return undefined;
  return { first: broadcast + 1 - block, last: broadcast - 1 };
}

/** The VPN server's own address in vpn.clientSubnet (openvpn's `server` directive takes the first host). */
export function serverTunnelAddress(clientSubnet: string): string {
  return intToIpv4(ipv4Bounds(parseCidr('vpn.clientSubnet', clientSubnet)).network + 1);
}

/**
 * The IPv6 tunnel address that goes with an IPv4 one: the same host index (offset from the network
 * address) in `subnet6`. Deterministic, so a device's IPv6 address follows its stored IPv4 address and
 * needs no storage of its own. Undefined when `ipv4` lies outside `subnet4` or the index does not fit.
 */
export function sameHostIn(subnet4: Cidr, subnet6: Cidr, ipv4: string): string | undefined {
  if (subnet4.family !== 'ipv4' || subnet6.family !== 'ipv6' || !ipaddr.IPv4.isValid(ipv4)) return undefined;
  if (!contains(subnet4, ipv4)) return undefined;
  const index = ipv4ToInt(ipv4) - ipv4ToInt(subnet4.network);
  if (subnet6.prefix > 96 && index >= 2 ** (128 - subnet6.prefix)) return undefined;
  // The host bits of the network are zero and the index fits in them (at most 32 bits): OR it into the
  // last two 16-bit groups.
  const parts = ipaddr.IPv6.parse(subnet6.network).parts.slice();
  parts[6] = parts[6]! | (index >>> 16);
  parts[7] = parts[7]! | (index & 0xffff);
  return new ipaddr.IPv6(parts).toString();
}
