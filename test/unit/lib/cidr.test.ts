/**
 * parseCidr answers plain IPv4 ranges without ipaddr.js (a start-up cost); its answers must be the ones
 * ipaddr.js gives, for accepted ranges and for refused ones (host bits set, not a range at all).
 */
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import { parseCidr } from '../../../src/lib/cidr.js';

/** What parseCidr answered before the plain-IPv4 path: ipaddr.js alone. */
function reference(value: string): { network: string; prefix: number } | 'invalid' | 'host-bits' {
  if (!ipaddr.isValidCIDR(value.trim())) return 'invalid';
  const [addr, prefix] = ipaddr.parseCIDR(value.trim());
  const network =
    addr.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(value.trim()).toString()
      : ipaddr.IPv6.networkAddressFromCIDR(value.trim()).toString();
  return network === addr.toString() ? { network, prefix } : 'host-bits';
}

function outcome(value: string): ReturnType<typeof reference> {
  try {
    const c = parseCidr('f', value);
    return { network: c.network, prefix: c.prefix };
  } catch (err) {
    return /host bits/.test((err as Error).message) ? 'host-bits' : 'invalid';
  }
}

describe('lib/cidr parseCidr', () => {
  const cases = [
    '10.140.0.0/16', '10.244.0.0/16', '0.0.0.0/0', '255.255.255.255/32', '192.168.1.0/24', ' 10.0.0.0/8 ',
    '172.16.0.0/12', '10.140.0.1/32', '10.140.0.1/16', '1.2.3.4/0', '128.0.0.0/1', '192.168.1.128/25',
    '10.0.0.0/33', '256.0.0.0/8', '10.0.0/8', '010.0.0.0/8', '10.0.0.0/08', '0x0a.0.0.0/8', '10.0.0.0',
    '10.0.0.0/', 'fd00::/64', 'fd00::1/64', '::/0', 'nonsense', '',
  ]; // prettier-ignore
  for (const value of cases) {
    it(`"${value}" as ipaddr.js answers it`, () => assert.deepEqual(outcome(value), reference(value)));
  }

  it('names the field and suggests the network when host bits are set', () => {
    assert.throws(() => parseCidr('vpn.clientSubnet', '10.140.3.7/16'), {
      message: 'vpn.clientSubnet: "10.140.3.7/16" has host bits set (did you mean 10.140.0.0/16?)',
    });
  });

  it('normalised text for every prefix length of one address', () => {
    for (let p = 0; p <= 32; p++) {
      const ref = ipaddr.IPv4.networkAddressFromCIDR(`203.0.113.77/${p}`).toString();
      assert.equal(parseCidr('f', `${ref}/${p}`).text, `${ref}/${p}`);
    }
  });
});
