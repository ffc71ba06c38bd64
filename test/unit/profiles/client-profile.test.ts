import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderClientProfile, type ClientProfileInput } from '../../../src/profiles/client-profile.js';
import { assertSafeValue, checkRenderedConfig } from '../../../src/profiles/guard.js';
import { TEMPLATES_DIR } from '../../../src/lib/templates.js';

const PEM = (label: string, body = 'QUJD+/=') =>
  `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;

function input(over: Partial<ClientProfileInput> = {}): ClientProfileInput {
  return {
    template: readFileSync(join(TEMPLATES_DIR, 'client.ovpn.hbs'), 'utf8'),
    commonName: 'alice.laptop',
    serverName: 'podgate-server',
    remotes: [
      { host: '172.18.12.21', port: 30030, proto: 'udp' },
      { host: 'node-2.example', port: 30030, proto: 'udp' },
    ],
    caPem: PEM('CERTIFICATE', 'Y2E='),
    certPem: PEM('CERTIFICATE', 'Y2VydA=='),
    keyPem: PEM('PRIVATE KEY', 'a2V5'),
    tlsCryptV2KeyPem: PEM('OpenVPN tls-crypt-v2 client key', 'dGM='),
    issuedAt: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2027-01-01T00:00:00Z'),
    ...over,
  };
}

describe('client profile', () => {
  it('renders every remote, the server name check and exact PEM blocks (no HTML escaping of "=")', () => {
    const text = renderClientProfile(input());
    assert.match(text, /^client$/m);
    assert.match(text, /^nobind$/m);
    assert.match(text, /^remote 172\.18\.12\.21 30030 udp$/m);
    assert.match(text, /^remote node-2\.example 30030 udp$/m);
    assert.match(text, /^remote-cert-tls server$/m);
    assert.match(text, /^verify-x509-name podgate-server name$/m);
    assert.match(text, /<cert>\n-----BEGIN CERTIFICATE-----\nY2VydA==\n/);
    assert.match(text, /<tls-crypt-v2>\n/);
    assert.doesNotMatch(text, /&#x3D;|comp-lzo|compress/);
  });

  it('omits <key> when the key stayed on the device (CSR)', () => {
    const text = renderClientProfile(input({ keyPem: undefined }));
    assert.doesNotMatch(text, /<key>/);
  });

  it('refuses a value with a newline (directive injection) naming the field', () => {
    assert.throws(
      () => renderClientProfile(input({ serverName: 'x\nscript-security 2\nup /bin/sh' })),
      /serverName must not contain line breaks/,
    );
    assert.throws(
      () => renderClientProfile(input({ remotes: [{ host: '1.2.3.4\nup /bin/sh', port: 1, proto: 'udp' }] })),
      /vpn\.endpoints\[0\]/,
    );
    assert.throws(() => assertSafeValue('f', 'a\0b'), /f must not contain/);
  });

  it('refuses an empty endpoint list with a message naming vpn.endpoints', () => {
    assert.throws(() => renderClientProfile(input({ remotes: [] })), /vpn\.endpoints is empty/);
  });

  it('refuses a PEM that would close its block early and open another', () => {
    const evil =
      '-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----\n</cert>\nscript-security 2\n<cert>\nQQ==';
    assert.throws(() => renderClientProfile(input({ certPem: evil })), /guard/);
  });

  it('the guard rejects unknown directives, swapped blocks and missing blocks', () => {
    const rules = { directives: new Set(['client']), blocks: { ca: 'X' } };
    assert.doesNotThrow(() => checkRenderedConfig('client\n# c\n<ca>\nX\n</ca>\n', rules));
    assert.throws(
      () => checkRenderedConfig('client\nup /bin/sh\n<ca>\nX\n</ca>\n', rules),
      /"up" at line 2 is not allowed/,
    );
    assert.throws(
      () => checkRenderedConfig('client\n<ca>\nY\n</ca>\n', rules),
      /does not hold the expected content/,
    );
    assert.throws(() => checkRenderedConfig('client\n', rules), /<ca> is missing/);
    assert.throws(
      () => checkRenderedConfig('client\n<ca>\nX\n</ca>\n<key>\nK\n</key>\n', rules),
      /unexpected inline block <key>/,
    );
    assert.throws(() => checkRenderedConfig('client\r\n<ca>\nX\n</ca>\n', rules), /CR or NUL/);
  });
});
