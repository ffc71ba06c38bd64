import { netmask, parseCidr, sameHostIn, type Cidr } from './cidr.js';

/**
 * The tunnel's client ranges: vpn.clientSubnet (IPv4, where devices' stable addresses come from) and, on
 * a dual-stack server, vpn.clientSubnet6. A device's IPv6 tunnel address is derived from its IPv4 one
 * (same host index), so it needs no storage and every enforcement point computes the same one.
 */
export class TunnelSubnets {
  readonly subnet: Cidr;
  readonly subnet6: Cidr | undefined;
  /** IPv4 → IPv6 twin: a bundle names the same devices in many rules. */
  private readonly twins = new Map<string, string | undefined>();

  constructor(clientSubnet: string, clientSubnet6?: string) {
    this.subnet = parseCidr('vpn.clientSubnet', clientSubnet);
    this.subnet6 = clientSubnet6 ? parseCidr('vpn.clientSubnet6', clientSubnet6) : undefined;
  }

  /** Dotted netmask of the IPv4 range (`ifconfig-push`). */
  get netmask(): string {
    return netmask(this.subnet.prefix);
  }

  /** The IPv6 address (and prefix length) that goes with a device's IPv4 one; undefined on IPv4 only. */
  address6(ipv4: string): { address: string; prefix: number } | undefined {
    if (!this.subnet6) return undefined;
    let address = this.twins.get(ipv4);
    if (address === undefined && !this.twins.has(ipv4)) {
      address = sameHostIn(this.subnet, this.subnet6, ipv4);
      if (this.twins.size >= 1_000_000) this.twins.clear(); // a bound, far above any real device count
      this.twins.set(ipv4, address);
    }
    return address ? { address, prefix: this.subnet6.prefix } : undefined;
  }

  /** The addresses plus, for every IPv4 one, its IPv6 twin (dual stack): one identity, both families. */
  withIpv6(addresses: readonly string[]): string[] {
    const six = addresses.flatMap((a) => this.address6(a)?.address ?? []);
    return [...addresses, ...six];
  }
}

/**
 * Keeps the IPv4 entries (ranges or addresses), and the IPv6 ones too when the tunnel carries IPv6
 * (vpn.clientSubnet6): a client without an IPv6 tunnel address cannot use them.
 */
export function forTunnel(vpn: { clientSubnet6?: string }, values: readonly string[]): string[] {
  return vpn.clientSubnet6 ? [...values] : values.filter((c) => !c.includes(':'));
}
