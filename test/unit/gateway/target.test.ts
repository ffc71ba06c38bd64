import assert from 'node:assert/strict';
import { formatTarget, knownHostsName, parseTarget } from '../../../src/gateway/target.js';

describe('unit: gateway/target', () => {
  it('parses user@host, user@host:port and bracketed IPv6', () => {
    assert.deepEqual(parseTarget('t', 'root@gw.office.lan'), {
      user: 'root',
      host: 'gw.office.lan',
      port: 22,
    });
    assert.deepEqual(parseTarget('t', 'ops@10.0.0.5:2222'), { user: 'ops', host: '10.0.0.5', port: 2222 });
    assert.deepEqual(parseTarget('t', 'ops@[fd00::1]:2200'), { user: 'ops', host: 'fd00::1', port: 2200 });
  });

  const bad: [string, RegExp][] = [
    ['gw.lan', /has no user/],
    ['@gw', /has no user/],
    ['ro ot@gw', /invalid user/],
    ['$(id)@gw', /invalid user/],
    ['root@gw;reboot', /invalid host/],
    ['root@-oProxyCommand=x', /invalid host/],
    ['root@gw:0', /out of range/],
    ['root@gw:65536', /out of range/],
    ['root@gw:22x', /invalid port/],
    ['root@fd00::1', /more than one/],
    ['root@[gw]:22', /invalid IPv6/],
  ];
  for (const [value, why] of bad) {
    it(`400 for ${JSON.stringify(value)}`, () => {
      assert.throws(
        () => parseTarget('target', value),
        (e: Error & { status?: number; field?: string }) => {
          assert.equal(e.status, 400);
          assert.equal(e.field, 'target');
          assert.match(e.message, why);
          return true;
        },
      );
    });
  }

  it('names hosts the way known_hosts does', () => {
    assert.equal(knownHostsName({ host: 'gw', port: 22 }), 'gw');
    assert.equal(knownHostsName({ host: '127.0.0.1', port: 2222 }), '[127.0.0.1]:2222');
    assert.equal(formatTarget({ user: 'a', host: 'fd00::1', port: 22 }), 'a@[fd00::1]:22');
  });
});
