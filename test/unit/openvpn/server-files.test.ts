/**
 * Where `server run` puts openvpn's files: keys 0600, the active CRL somewhere the dropped user can
 * read, and runtime dirs of data dirs that no longer exist pruned on the next start.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { configSchema } from '../../../src/config/schema.js';
import { serverPaths, writeServerFiles } from '../../../src/openvpn/server-files.js';
import { generateTlsCryptKey, generateTlsCryptV2ServerKey } from '../../../src/pki/tls-crypt.js';

const id = {
  caCertPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
  certPem: '-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n',
  keyPem: '-----BEGIN TEST SERVER KEY-----\nCCCC\n-----END TEST SERVER KEY-----\n',
  tlsCryptV2ServerKeyPem: generateTlsCryptV2ServerKey(),
  tlsCryptKeyPem: generateTlsCryptKey(),
};

describe('openvpn/server-files', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'pg-sfiles-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('a data dir open to others keeps the active CRL inside it; keys are 0600', () => {
    chmodSync(root, 0o755);
    const config = configSchema.parse({ dataDir: join(root, 'data') });
    mkdirSync(config.dataDir, { mode: 0o755 });
    const paths = serverPaths(config);
    assert.equal(dirname(paths.activeCrl), paths.dir);
    const { managementPassword } = writeServerFiles(config, paths, id);
    for (const f of [paths.key, paths.tlsCryptV2, paths.managementPasswordFile, paths.config]) {
      assert.equal(statSync(f).mode & 0o777, 0o600, f);
    }
    assert.equal(statSync(paths.dir).mode & 0o777, 0o755);
    assert.match(readFileSync(paths.config, 'utf8'), new RegExp(`^crl-verify ${paths.activeCrl}$`, 'm'));
    assert.equal(
      writeServerFiles(config, paths, id).managementPassword,
      managementPassword,
      'password kept across restarts',
    );
  });

  it('a closed (0700) data dir puts the active CRL under /run/podgate; gone data dirs are pruned', function () {
    if (process.getuid?.() !== 0) {
      // /run/podgate needs root. CI runs the suites as root, so there a non-root run is a broken setup.
      if (process.env.CI === 'true') throw new Error('needs root to write /run/podgate, and CI runs as root');
      this.skip();
    }
    const config = configSchema.parse({ dataDir: join(root, 'data') });
    mkdirSync(config.dataDir, { mode: 0o700 });
    const paths = serverPaths(config);
    assert.match(paths.activeCrl, /^\/run\/podgate\/[0-9a-f]{16}\/openvpn-crl\.pem$/);
    writeServerFiles(config, paths, id);
    const runDir = dirname(paths.activeCrl);
    assert.equal(readFileSync(join(runDir, 'data-dir'), 'utf8').trim(), config.dataDir);
    // Another data dir starts after this one vanished without cleaning up: its runtime dir is pruned.
    rmSync(config.dataDir, { recursive: true, force: true });
    const other = configSchema.parse({ dataDir: join(root, 'other') });
    mkdirSync(other.dataDir, { mode: 0o700 });
    const otherPaths = serverPaths(other);
    writeServerFiles(other, otherPaths, id);
    assert.ok(!existsSync(runDir), 'stale runtime dir removed');
    assert.ok(existsSync(dirname(otherPaths.activeCrl)));
    rmSync(dirname(otherPaths.activeCrl), { recursive: true, force: true });
  });
});
