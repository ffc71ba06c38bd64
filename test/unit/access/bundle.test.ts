import assert from 'node:assert/strict';
import { parseAccessBundle, parseAccessBundleText } from '../../../src/access/bundle.js';
import { renderClientConfigFile } from '../../../src/profiles/client-config-dir.js';

const good = {
  version: 3,
  mode: 'enforce',
  generatedAt: '2026-12-06T00:00:00Z',
  clients: [{ commonName: 'alice', address: '10.140.0.10' }],
  rules: [
    {
      name: 'team-a',
      clients: ['10.140.0.10'],
      destinations: [{ kind: 'namespace', names: ['team-a'] }],
      protocol: 'tcp',
      ports: [{ from: 80, to: 443 }],
    },
  ],
};

describe('access/bundle', () => {
  it('accepts a well-formed bundle', () => {
    assert.equal(parseAccessBundle(good).version, 3);
  });

  const bad: [string, unknown, RegExp][] = [
    ['400 not JSON', '{', /not JSON/],
    ['400 unknown mode names bundle.mode', { ...good, mode: 'closed' }, /bundle\.mode/],
    [
      '400 client address not IPv4',
      { ...good, clients: [{ commonName: 'alice', address: 'x' }] },
      /bundle\.clients\.0\.address/,
    ],
    [
      '400 common name outside the name rule',
      { ...good, clients: [{ commonName: '../x', address: '10.140.0.1' }] },
      /commonName/,
    ],
    [
      '400 port range upside down',
      { ...good, rules: [{ ...good.rules[0], ports: [{ from: 9, to: 1 }] }] },
      /bundle\.rules\.0\.ports\.0/,
    ],
    [
      '400 unknown destination kind',
      { ...good, rules: [{ ...good.rules[0], destinations: [{ kind: 'host' }] }] },
      /destinations\.0\.kind/,
    ],
    ['400 duplicate rule names', { ...good, rules: [good.rules[0], good.rules[0]] }, /duplicate rule/],
    ['400 duplicate devices', { ...good, clients: [good.clients[0], good.clients[0]] }, /duplicate "alice"/],
  ];
  for (const [name, value, re] of bad) {
    it(name, () => {
      assert.throws(
        () => (typeof value === 'string' ? parseAccessBundleText(value) : parseAccessBundle(value)),
        (e: Error & { status?: number }) => e.status === 400 && re.test(e.message),
      );
    });
  }

  it('a client-config-dir file holds only ifconfig-push; bad addresses are refused', () => {
    assert.equal(
      renderClientConfigFile('10.140.0.10', '255.255.0.0')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .join('|'),
      'ifconfig-push 10.140.0.10 255.255.0.0',
    );
    assert.throws(() => renderClientConfigFile('10.140.0.10\npush x', '255.255.0.0'), /address/);
    assert.throws(() => renderClientConfigFile('fd00::1', '255.255.0.0'), /IPv4/);
  });

  it('dual stack: the file adds ifconfig-ipv6-push; a bad IPv6 address or prefix is refused', () => {
    const text = renderClientConfigFile('10.140.0.10', '255.255.0.0', { address: 'fd00:140::a', prefix: 64 });
    assert.deepEqual(
      text.split('\n').filter((l) => l && !l.startsWith('#')),
      ['ifconfig-push 10.140.0.10 255.255.0.0', 'ifconfig-ipv6-push fd00:140::a/64'],
    );
    assert.throws(
      () => renderClientConfigFile('10.140.0.10', '255.255.0.0', { address: 'fd00::a\npush x', prefix: 64 }),
      /address6/,
    );
    assert.throws(
      () => renderClientConfigFile('10.140.0.10', '255.255.0.0', { address: '10.0.0.1', prefix: 64 }),
      /address6/,
    );
    assert.throws(
      () => renderClientConfigFile('10.140.0.10', '255.255.0.0', { address: 'fd00::a', prefix: 48 }),
      /prefix6/,
    );
  });
});
