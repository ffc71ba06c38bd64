import { BadRequest } from '../lib/errors.js';
import { isIp } from '../lib/cidr.js';
import { checkRenderedConfig } from './guard.js';

/** Directives a client-config-dir file may hold. */
export const CCD_DIRECTIVES: ReadonlySet<string> = new Set(['ifconfig-push', 'ifconfig-ipv6-push']);

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-f:]{2,39}$/;

/** The device's IPv6 tunnel address and the prefix length of vpn.clientSubnet6 (dual stack). */
export interface ClientAddress6 {
  address: string;
  prefix: number;
}

/**
 * The `client-config-dir` file of one device: its stable tunnel address (`topology subnet`: address and
 * the client subnet's netmask), and on a dual-stack server its IPv6 address (`ifconfig-ipv6-push`).
 * Checked by the same injection guard as every other config podgate writes.
 */
export function renderClientConfigFile(address: string, netmask: string, v6?: ClientAddress6): string {
  for (const [field, v] of [
    ['address', address],
    ['netmask', netmask],
  ] as const) {
    if (!IPV4.test(v) || !isIp(v)) throw new BadRequest(`${field} "${v}" is not an IPv4 address`, field);
  }
  let text = `# podgate: stable tunnel address of this device\nifconfig-push ${address} ${netmask}\n`;
  if (v6) {
    if (!IPV6.test(v6.address) || !isIp(v6.address))
      throw new BadRequest(`address6 "${v6.address}" is not an IPv6 address`, 'address6');
    if (!Number.isInteger(v6.prefix) || v6.prefix < 64 || v6.prefix > 124)
      throw new BadRequest(`prefix6 ${String(v6.prefix)} must be 64-124`, 'prefix6');
    text += `ifconfig-ipv6-push ${v6.address}/${v6.prefix}\n`;
  }
  checkRenderedConfig(text, { directives: CCD_DIRECTIVES, blocks: {} });
  return text;
}
