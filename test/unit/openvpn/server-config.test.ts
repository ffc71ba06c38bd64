/**
 * server.conf rendering: the directives the design asks for, pushed routes and DNS, refusal of
 * overlapping or malformed values (naming the field), and the injection guard on the finished text.
 * The e2e suite starts the real openvpn with this output.
 */
import assert from 'node:assert/strict';
import { configSchema } from '../../../src/config/schema.js';
import { loadTemplate } from '../../../src/lib/templates.js';
import { renderServerConfig, type ServerConfigInput } from '../../../src/profiles/server-config.js';
import { generateTlsCryptV2ServerKey } from '../../../src/pki/tls-crypt.js';

function input(
  vpnOverrides: Record<string, unknown> = {},
  extra: Partial<ServerConfigInput> = {},
): ServerConfigInput {
  const vpn = configSchema.parse({
    vpn: {
      routes: { pods: ['10.244.0.0/16'], services: ['10.96.0.0/12'], extra: ['192.168.50.0/24'] },
      dns: {
        servers: ['10.96.0.10'],
        domain: 'cluster.local',
        searchDomains: ['svc.cluster.local', 'cluster.local'],
      },
      ...vpnOverrides,
    },
  }).vpn;
  return {
    template: loadTemplate('server.conf.hbs'),
    vpn,
    crlFile: '/var/lib/podgate/server/crl.pem',
    managementSocket: '/run/podgate/mgmt.sock',
    managementPasswordFile: '/var/lib/podgate/server/mgmt.pw',
    files: { ca: 'ca.crt', cert: 'server.crt', key: 'server.key', tlsCryptV2: 'tc2-server.key' },
    ...extra,
  };
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l && !l.startsWith('#'));
}

/**
 * OpenVPN 2.6 turns data channel offload (ovpn-dco) off, with a warning, for any of these (its
 * README.dco.md, "Limitations by design"): a tap device, a topology other than subnet in server mode, a
 * non-AEAD data cipher (or a CBC fallback), compression or compression framing, packet manipulation
 * (`--fragment`, `--shaper`), and `--disable-dco` itself. This kernel has no ovpn module, so openvpn runs
 * without DCO here, but the config must let a kernel with it use it.
 */
const DCO_BREAKERS = [
  /^dev tap/,
  /^topology (net30|p2p)/,
  /^data-ciphers-fallback /,
  /^cipher (?!AES-(128|192|256)-GCM|CHACHA20-POLY1305)/,
  /^(comp-lzo|compress)\b/,
  /^allow-compression (yes|asym)/,
  /^(fragment|shaper|disable-dco)\b/,
];
const DCO_CIPHERS = new Set(['AES-128-GCM', 'AES-192-GCM', 'AES-256-GCM', 'CHACHA20-POLY1305']);

describe('profiles/server-config', () => {
  it('stays DCO-compatible: tun, topology subnet, AEAD ciphers only, no compression or packet manipulation', () => {
    for (const vpn of [{}, { proto: 'tcp' }]) {
      const l = lines(renderServerConfig(input(vpn)));
      for (const line of l) for (const re of DCO_BREAKERS) assert.doesNotMatch(line, re);
      assert.ok(l.includes('dev tun') && l.includes('topology subnet'));
      const ciphers = l
        .find((x) => x.startsWith('data-ciphers '))!
        .split(' ')[1]!
        .split(':');
      assert.ok(ciphers.length > 0 && ciphers.every((c) => DCO_CIPHERS.has(c)), ciphers.join(':'));
    }
  });

  it('renders the hardened defaults', () => {
    const l = lines(renderServerConfig(input()));
    for (const want of [
      'port 30030',
      'proto udp',
      'dev tun',
      'topology subnet',
      'multihome',
      'server 10.140.0.0 255.255.0.0',
      'keepalive 5 20',
      'persist-key',
      'persist-tun',
      'user nobody',
      'group nogroup',
      'remote-cert-tls client',
      'tls-version-min 1.2',
      'data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305',
      'dh none',
      'allow-compression no',
      'crl-verify /var/lib/podgate/server/crl.pem',
      'management /run/podgate/mgmt.sock unix /var/lib/podgate/server/mgmt.pw',
      'ca ca.crt',
      'cert server.crt',
      'key server.key',
      'tls-crypt-v2 tc2-server.key',
    ]) {
      assert.ok(l.includes(want), `missing "${want}"`);
    }
    assert.ok(
      !l.some((x) => /^(compress|comp-lzo|tls-crypt )/.test(x)),
      'no compression, no static tls-crypt',
    );
  });

  it('pushes every pod/service/extra route and the DNS options, new and legacy', () => {
    const l = lines(renderServerConfig(input()));
    for (const want of [
      'push "route 10.244.0.0 255.255.0.0"',
      'push "route 10.96.0.0 255.240.0.0"',
      'push "route 192.168.50.0 255.255.255.0"',
      'push "dns server 0 address 10.96.0.10"',
      'push "dns server 0 resolve-domains cluster.local"',
      'push "dns search-domains svc.cluster.local cluster.local"',
      'push "dhcp-option DNS 10.96.0.10"',
      'push "dhcp-option DOMAIN cluster.local"',
      'push "dhcp-option DOMAIN-SEARCH svc.cluster.local"',
    ]) {
      assert.ok(l.includes(want), `missing ${want}`);
    }
  });

  it('omits DNS and user/group when not configured, tcp has no explicit-exit-notify', () => {
    const text = renderServerConfig(input({ dns: {}, user: '', group: '', proto: 'tcp' }));
    assert.doesNotMatch(text, /dns|dhcp-option|^user|^group|explicit-exit-notify|multihome/m);
    assert.match(text, /^proto tcp$/m);
  });

  it('tls-crypt static key when vpn.controlChannel is tls-crypt', () => {
    const text = renderServerConfig(
      input(
        { controlChannel: 'tls-crypt' },
        { files: { ca: 'ca.crt', cert: 's.crt', key: 's.key', tlsCrypt: 'tc.key' } },
      ),
    );
    assert.match(text, /^tls-crypt tc\.key$/m);
    assert.doesNotMatch(text, /tls-crypt-v2/);
  });

  it('inline PEM blocks pass the guard', () => {
    const pem = (l: string) => `-----BEGIN ${l}-----\nAAAA\n-----END ${l}-----\n`;
    const key = generateTlsCryptV2ServerKey();
    const text = renderServerConfig(
      input(
        {},
        {
          files: undefined,
          inline: {
            caPem: pem('CERTIFICATE'),
            certPem: pem('CERTIFICATE'),
            keyPem: pem('PRIVATE KEY'),
            tlsCryptV2ServerKeyPem: key,
          },
        },
      ),
    );
    assert.ok(text.includes(`<tls-crypt-v2>\n${key.trim()}\n</tls-crypt-v2>`));
    assert.ok(!text.includes('&#x3D;'), 'no HTML escaping of base64');
  });

  it('400 when the client subnet overlaps a pushed route, naming both', () => {
    assert.throws(
      () => renderServerConfig(input({ clientSubnet: '10.244.128.0/17' })),
      (e: Error & { status?: number }) =>
        e.status === 400 &&
        /vpn\.clientSubnet 10\.244\.128\.0\/17 overlaps vpn\.routes\.pods\[0\] 10\.244\.0\.0\/16/.test(
          e.message,
        ),
    );
  });

  it('400 naming the field for bad values', () => {
    const cases: [Partial<ServerConfigInput>, RegExp][] = [
      [{ crlFile: '/tmp/a b.pem' }, /crlFile/],
      [{ managementSocket: '/tmp/x\nscript-security 2' }, /managementSocket must not contain line breaks/],
      [{ files: { ca: 'ca.crt', cert: 's.crt', key: 'k"ey', tlsCryptV2: 'x' } }, /files\.key/],
    ];
    for (const [extra, re] of cases) {
      assert.throws(
        () => renderServerConfig(input({}, extra)),
        (e: Error & { status?: number }) => e.status === 400 && re.test(e.message),
      );
    }
    const vpn = input().vpn;
    assert.throws(
      () => renderServerConfig({ ...input(), vpn: { ...vpn, user: 'root\nup /bin/sh' } }),
      /vpn\.user/,
    );
    assert.throws(
      () =>
        renderServerConfig({ ...input(), vpn: { ...vpn, routes: { ...vpn.routes, extra: ['fd00::/64'] } } }),
      /vpn\.routes\.extra\[0\].*needs vpn\.clientSubnet6/,
    );
    assert.throws(
      () => renderServerConfig({ ...input(), vpn: { ...vpn, dns: { ...vpn.dns, domain: 'x" "y' } } }),
      /vpn\.dns\.domain/,
    );
  });

  it('access: client-config-dir + ccd-exclusive only when the server checks identity at connect', () => {
    assert.ok(!lines(renderServerConfig(input())).some((l) => /client-config-dir|ccd-exclusive/.test(l)));
    const l = lines(renderServerConfig(input({}, { clientConfigDir: '/run/podgate/abc/ccd' })));
    assert.ok(l.includes('client-config-dir /run/podgate/abc/ccd'));
    assert.ok(l.includes('ccd-exclusive'));
    assert.throws(
      () => renderServerConfig(input({}, { clientConfigDir: '/tmp/x\nup /bin/sh' })),
      /clientConfigDir must not contain line breaks/,
    );
  });

  it("client-config-dir without ccd-exclusive: openvpn's pool is only the holding range, never a device's address", () => {
    const l = lines(
      renderServerConfig(input({}, { clientConfigDir: '/run/podgate/ccd', clientConfigExclusive: false })),
    );
    assert.ok(l.includes('server 10.140.0.0 255.255.0.0 nopool'), l.join('\n'));
    assert.ok(l.includes('ifconfig-pool 10.140.255.0 10.140.255.254 255.255.0.0'), l.join('\n'));
    assert.ok(!l.includes('ccd-exclusive'));
    // ccd-exclusive (every device has a file) and no client-config-dir (openvpn's pool for everyone): as before
    for (const extra of [{ clientConfigDir: '/run/podgate/ccd' }, {}]) {
      const e = lines(renderServerConfig(input({}, extra)));
      assert.ok(e.includes('server 10.140.0.0 255.255.0.0'));
      assert.ok(!e.some((x) => /ifconfig-pool|nopool/.test(x)));
    }
  });

  it('dual stack: server-ipv6, route-ipv6 for the IPv6 ranges, DNS over IPv6 (no tun-ipv6)', () => {
    const l = lines(
      renderServerConfig(
        input({
          clientSubnet6: 'fd00:140::/64',
          routes: { pods: ['10.244.0.0/16', 'fd00:10:244::/56'], services: ['fd00:10:96::/112'] },
          dns: { servers: ['10.96.0.10', 'fd00:10:96::a'] },
        }),
      ),
    );
    for (const want of [
      'server 10.140.0.0 255.255.0.0',
      'server-ipv6 fd00:140::/64',
      'push "route 10.244.0.0 255.255.0.0"',
      'push "route-ipv6 fd00:10:244::/56"',
      'push "route-ipv6 fd00:10:96::/112"',
      'push "dns server 0 address 10.96.0.10"',
      'push "dns server 0 address fd00:10:96::a"',
      'push "dhcp-option DNS 10.96.0.10"',
      'push "dhcp-option DNS6 fd00:10:96::a"',
    ])
      assert.ok(l.includes(want), `missing ${want}`);
    assert.ok(!l.some((x) => /tun-ipv6|dhcp-option DNS fd00/.test(x)), 'no tun-ipv6, no IPv6 in DNS');
  });

  it('IPv4 only (no clientSubnet6): no server-ipv6, and an IPv6 DNS server is not pushed', () => {
    const text = renderServerConfig(input({ dns: { servers: ['10.96.0.10', 'fd00:10:96::a'] } }));
    assert.doesNotMatch(text, /server-ipv6|route-ipv6|fd00/);
  });

  it('400 when clientSubnet6 overlaps an IPv6 route, or is not a range openvpn takes', () => {
    assert.throws(
      () =>
        renderServerConfig(
          input({ clientSubnet6: 'fd00:10:244::/64', routes: { pods: ['fd00:10:244::/56'] } }),
        ),
      (e: Error & { status?: number }) =>
        e.status === 400 &&
        /vpn\.clientSubnet6 fd00:10:244::\/64 overlaps vpn\.routes\.pods\[0\]/.test(e.message),
    );
    const vpn = input().vpn;
    assert.throws(
      () => renderServerConfig({ ...input(), vpn: { ...vpn, clientSubnet6: 'fd00::/48' } }),
      /vpn\.clientSubnet6 must be an IPv6 range from \/64 to \/124/,
    );
  });

  it('the guard refuses a template that smuggles a directive', () => {
    const bad = { ...input(), template: input().template + 'script-security 2\n' };
    assert.throws(() => renderServerConfig(bad), /directive "script-security"/);
  });
});
