import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, envName, ConfigError } from '../../../src/config/load.js';
import { tempDir } from '../../helpers/cli.js';
import { PACKAGE_ROOT } from '../../../src/lib/templates.js';

describe('config', () => {
  it('runs on embedded defaults with no file and no environment', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.dataDir, './data');
    assert.equal(c.web.host, '127.0.0.1');
    assert.equal(c.web.port, 8080);
    assert.equal(c.vpn.clientSubnet, '10.140.0.0/16');
    assert.equal(c.vpn.port, 30030);
    assert.equal(c.vpn.proto, 'udp');
    assert.equal(c.kubernetes.namespace, 'middleware');
  });

  it('the documented example config (docs/podgate.example.yaml) loads', () => {
    const c = loadConfig({ file: join(PACKAGE_ROOT, 'docs', 'podgate.example.yaml'), env: {} });
    assert.deepEqual(c.vpn.routes.pods, ['10.244.0.0/16']);
    assert.equal(c.vpn.controlChannel, 'tls-crypt-v2');
  });

  it("the example's commented single sign-on block loads once uncommented", () => {
    const text = readFileSync(join(PACKAGE_ROOT, 'docs', 'podgate.example.yaml'), 'utf8');
    const open = text
      .replace(/^  # (oidc:.*|  [a-zA-Z]+:.*)$/gm, '  $1')
      .replace('local: all', 'local: admins-only');
    const t = tempDir();
    try {
      const file = join(t.dir, 'podgate.yaml');
      writeFileSync(file, open);
      const c = loadConfig({ file, env: {} });
      assert.equal(c.auth.local, 'admins-only');
      assert.equal(c.auth.oidc?.issuer, 'https://id.example.com/realms/acme');
      assert.deepEqual(c.auth.oidc?.adminGroups, ['vpn-admins']);
      assert.equal(c.auth.oidc?.syncIntervalHours, 24);
    } finally {
      t.cleanup();
    }
  });

  it('single sign-on settings: every bad key named, env variables work', () => {
    assert.throws(
      () => loadConfig({ env: {}, overrides: { 'auth.local': 'off' } }),
      /auth\.local: auth\.local other than "all" needs auth\.oidc/,
    );
    assert.throws(
      () =>
        loadConfig({
          env: {},
          overrides: {
            'auth.oidc': { issuer: 'id.example', clientId: 'p', redirectUrl: 'https://vpn.example/callback' },
          },
        }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => p.startsWith('auth.oidc.issuer: must be an absolute URL')) &&
        err.problems.some((p) => p.startsWith('auth.oidc.redirectUrl: must be this site')),
    );
    const c = loadConfig({
      env: {
        PODGATE_AUTH_OIDC_ISSUER: 'https://id.example',
        PODGATE_AUTH_OIDC_CLIENT_ID: 'podgate',
        PODGATE_AUTH_OIDC_REDIRECT_URL: 'https://vpn.example/auth/oidc/callback',
        PODGATE_AUTH_OIDC_ALLOWED_GROUPS: 'vpn-users, contractors',
      },
    });
    assert.deepEqual(c.auth.oidc?.allowedGroups, ['vpn-users', 'contractors']);
    assert.equal(c.auth.oidc?.usernameClaim, 'preferred_username');
  });

  it('maps camelCase paths to PODGATE_ env names', () => {
    assert.equal(envName(['vpn', 'clientSubnet']), 'PODGATE_VPN_CLIENT_SUBNET');
    assert.equal(envName(['web', 'sessionIdleMinutes']), 'PODGATE_WEB_SESSION_IDLE_MINUTES');
  });

  it('environment overrides the file; overrides win over both', () => {
    const t = tempDir();
    try {
      const file = join(t.dir, 'podgate.yaml');
      writeFileSync(file, 'vpn:\n  port: 1194\n  proto: tcp\nweb:\n  port: 9000\n');
      const c = loadConfig({
        file,
        env: {
          PODGATE_VPN_PORT: '1195',
          PODGATE_VPN_ROUTES_PODS: '10.244.0.0/16, 10.245.0.0/16',
          PODGATE_VPN_NAT: 'true',
        },
        overrides: { 'web.port': 9100 },
      });
      assert.equal(c.vpn.port, 1195);
      assert.equal(c.vpn.proto, 'tcp');
      assert.deepEqual(c.vpn.routes.pods, ['10.244.0.0/16', '10.245.0.0/16']);
      assert.equal(c.vpn.nat, true);
      assert.equal(c.web.port, 9100);
    } finally {
      t.cleanup();
    }
  });

  it('lists every bad key by path', () => {
    try {
      loadConfig({
        env: {
          PODGATE_VPN_CLIENT_SUBNET: '10.140.0.0/33',
          PODGATE_WEB_PORT: 'eighty',
          PODGATE_VPN_DNS_SERVERS: '10.96.0.300',
        },
      });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const joined = err.problems.join('\n');
      assert.match(joined, /^vpn\.clientSubnet: /m);
      assert.match(joined, /^web\.port: /m);
      assert.match(joined, /^vpn\.dns\.servers\.0: .*not an IP address/m);
      assert.equal(err.status, 400);
    }
  });

  it('vpn.clientSubnet6: from the environment; refused (by path) unless an IPv6 /64-/124 large enough', () => {
    const ok = loadConfig({ env: { PODGATE_VPN_CLIENT_SUBNET6: 'fd00:140::/64' } });
    assert.equal(ok.vpn.clientSubnet6, 'fd00:140::/64');
    assert.equal(loadConfig({ env: {} }).vpn.clientSubnet6, undefined);
    const cases: [Record<string, string>, RegExp][] = [
      [{ PODGATE_VPN_CLIENT_SUBNET6: '10.141.0.0/16' }, /^vpn\.clientSubnet6: .*not an IPv6 range/m],
      [{ PODGATE_VPN_CLIENT_SUBNET6: 'fd00:140::/48' }, /^vpn\.clientSubnet6: .*\/64 to \/124/m],
      [{ PODGATE_VPN_CLIENT_SUBNET6: 'fd00:140::1/64' }, /^vpn\.clientSubnet6: .*host bits set/m],
      // a /16 of IPv4 hosts needs at least 16 host bits of IPv6 (same host index)
      [
        { PODGATE_VPN_CLIENT_SUBNET6: 'fd00:140::/120' },
        /^vpn\.clientSubnet6: .*smaller than vpn\.clientSubnet.*at most \/112/m,
      ],
    ];
    for (const [env, re] of cases) {
      assert.throws(
        () => loadConfig({ env }),
        (e: unknown) => e instanceof ConfigError && re.test(e.problems.join('\n')),
        JSON.stringify(env),
      );
    }
    const small = loadConfig({
      env: { PODGATE_VPN_CLIENT_SUBNET: '10.140.0.0/24', PODGATE_VPN_CLIENT_SUBNET6: 'fd00:140::/120' },
    });
    assert.equal(small.vpn.clientSubnet6, 'fd00:140::/120');
  });

  it('rejects unknown keys and unreadable files by name', () => {
    const t = tempDir();
    try {
      const file = join(t.dir, 'podgate.yaml');
      writeFileSync(file, 'vpn:\n  clientSubnett: 10.0.0.0/8\n');
      assert.throws(() => loadConfig({ file, env: {} }), /vpn: unknown key\(s\) clientSubnett/);
      assert.throws(
        () => loadConfig({ file: join(t.dir, 'missing.yaml'), env: {} }),
        /missing\.yaml: ENOENT/,
      );
      writeFileSync(file, 'vpn: [');
      assert.throws(() => loadConfig({ file, env: {} }), ConfigError);
    } finally {
      t.cleanup();
    }
  });
});
