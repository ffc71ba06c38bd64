import { BadRequest } from '../lib/errors.js';
import { isIp } from '../lib/cidr.js';
import { checkRenderedConfig } from './guard.js';

/** Directives a client-config-dir file may hold. */
export const CCD_DIRECTIVES: ReadonlySet<string> = new Set(['ifconfig-push']);

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * The `client-config-dir` file of one device: its stable tunnel address (`topology subnet`: address and
 * the client subnet's netmask). Checked by the same injection guard as every other config podgate writes.
 */
export function renderClientConfigFile(address: string, netmask: string): string {
  for (const [field, v] of [
    ['address', address],
    ['netmask', netmask],
  ] as const) {
    if (!IPV4.test(v) || !isIp(v)) throw new BadRequest(`${field} "${v}" is not an IPv4 address`, field);
  }
  const text = `# podgate: stable tunnel address of this device\nifconfig-push ${address} ${netmask}\n`;
  checkRenderedConfig(text, { directives: CCD_DIRECTIVES, blocks: {} });
  return text;
}
