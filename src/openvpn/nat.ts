import { exec } from '../lib/exec.js';
import { parseCidr } from '../lib/cidr.js';

/**
 * MASQUERADE of the client subnet (`vpn.nat: true`): pods answer the server's address, not a VPN
 * address they have no route to. The rule carries a comment so that it is removed exactly, never a
 * rule someone else added. An IPv6 range (vpn.clientSubnet6) gets the same rule from ip6tables (NAT66).
 */
export class NatRule {
  private readonly spec: string[];
  private readonly tool: 'iptables' | 'ip6tables';
  private added = false;

  constructor(clientSubnet: string, tag = 'podgate', field = 'vpn.clientSubnet') {
    const cidr = parseCidr(field, clientSubnet);
    const subnet = cidr.text;
    this.tool = cidr.family === 'ipv4' ? 'iptables' : 'ip6tables';
    this.spec = [
      'POSTROUTING',
      '-s',
      subnet,
      '!',
      '-d',
      subnet,
      '-m',
      'comment',
      '--comment',
      tag,
      '-j',
      'MASQUERADE',
    ];
  }

  /** Adds the rule unless it is already there (idempotent across restarts). */
  async add(): Promise<void> {
    const present = await exec([this.tool, '-w', '-t', 'nat', '-C', ...this.spec], { check: false });
    if (present.code !== 0) await exec([this.tool, '-w', '-t', 'nat', '-A', ...this.spec]);
    this.added = true;
  }

  /** Removes the rule if this process added it. Never throws. */
  async remove(): Promise<void> {
    if (!this.added) return;
    this.added = false;
    await exec([this.tool, '-w', '-t', 'nat', '-D', ...this.spec], { check: false }).catch(() => undefined);
  }
}
