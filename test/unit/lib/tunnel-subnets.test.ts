/** IPv6 tunnel addresses derived from IPv4 ones (same host index), and the per-family filter. */
import assert from 'node:assert/strict';
import { parseCidr, sameHostIn } from '../../../src/lib/cidr.js';
import { forTunnel, TunnelSubnets } from '../../../src/lib/tunnel-subnets.js';

describe('lib/tunnel-subnets', () => {
  it('the IPv6 address has the host index of the IPv4 one', () => {
    const s = new TunnelSubnets('10.140.0.0/16', 'fd00:140::/64');
    assert.deepEqual(s.address6('10.140.0.2'), { address: 'fd00:140::2', prefix: 64 });
    assert.deepEqual(s.address6('10.140.1.0'), { address: 'fd00:140::100', prefix: 64 });
    assert.deepEqual(s.address6('10.140.255.254'), { address: 'fd00:140::fffe', prefix: 64 });
    assert.equal(s.netmask, '255.255.0.0');
  });

  it('no IPv6 address outside the IPv4 range, when the index does not fit, or on IPv4 only', () => {
    assert.equal(new TunnelSubnets('10.140.0.0/16', 'fd00:140::/64').address6('10.141.0.2'), undefined);
    assert.equal(
      sameHostIn(parseCidr('a', '10.140.0.0/16'), parseCidr('b', 'fd00::/120'), '10.140.1.0'),
      undefined,
    );
    assert.equal(
      sameHostIn(parseCidr('a', '10.140.0.0/16'), parseCidr('b', 'fd00::/120'), '10.140.0.255'),
      'fd00::ff',
    );
    assert.equal(new TunnelSubnets('10.140.0.0/16').address6('10.140.0.2'), undefined);
  });

  it('withIpv6 adds the twin of each address; forTunnel keeps IPv6 only with clientSubnet6', () => {
    const s = new TunnelSubnets('10.140.0.0/16', 'fd00:140::/64');
    assert.deepEqual(s.withIpv6(['10.140.0.2', '10.140.0.9']), [
      '10.140.0.2',
      '10.140.0.9',
      'fd00:140::2',
      'fd00:140::9',
    ]);
    assert.deepEqual(new TunnelSubnets('10.140.0.0/16').withIpv6(['10.140.0.2']), ['10.140.0.2']);
    const both = ['10.96.0.10', 'fd00:10:96::a'];
    assert.deepEqual(forTunnel({}, both), ['10.96.0.10']);
    assert.deepEqual(forTunnel({ clientSubnet6: 'fd00:140::/64' }, both), both);
  });
});
