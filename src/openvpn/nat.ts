import { exec } from '../lib/exec.js';
import { parseCidr } from '../lib/cidr.js';

/**
 * MASQUERADE of the client subnet (`vpn.nat: true`): pods answer the server's address, not a VPN
 * address they have no route to. The rule carries a comment so that it is removed exactly, never a
 * rule someone else added.
 */
export class NatRule {
  private readonly spec: string[];
  private added = false;

  constructor(clientSubnet: string, tag = 'podgate') {
    const subnet = parseCidr('vpn.clientSubnet', clientSubnet).text;
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
    const present = await exec(['iptables', '-w', '-t', 'nat', '-C', ...this.spec], { check: false });
    if (present.code !== 0) await exec(['iptables', '-w', '-t', 'nat', '-A', ...this.spec]);
    this.added = true;
  }

  /** Removes the rule if this process added it. Never throws. */
  async remove(): Promise<void> {
    if (!this.added) return;
    this.added = false;
    await exec(['iptables', '-w', '-t', 'nat', '-D', ...this.spec], { check: false }).catch(() => undefined);
  }
}
