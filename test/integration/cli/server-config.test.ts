import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../../../src/store/index.js';
import { runCli, tempDir } from '../../helpers/cli.js';

describe('CLI: server config', function () {
  this.timeout(60_000);
  const t = tempDir();
  after(() => t.cleanup());

  it('prints a config without creating anything in an empty data dir', async () => {
    const dataDir = join(t.dir, 'empty');
    const r = await runCli(['server', 'config', '--data-dir', dataDir], {
      PODGATE_VPN_ROUTES_PODS: '10.244.0.0/16',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^push "route 10\.244\.0\.0 255\.255\.0\.0"$/m);
    assert.equal(existsSync(dataDir) && readdirSync(dataDir).length > 0, false);
  });

  it('pushes the stored discovery (IPv4 only) when the config names no routes, and config wins over it', async () => {
    const dataDir = join(t.dir, 'data');
    assert.equal((await runCli(['init', '--data-dir', dataDir])).code, 0);
    const store = SqliteStore.open(join(dataDir, 'podgate.db'));
    await store.setSetting(
      'cluster.discovery',
      JSON.stringify({
        podCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'],
        serviceCidrs: ['10.96.0.0/12'],
        dnsServer: '10.96.0.10',
      }),
    );
    await store.close();
    const r = await runCli(['server', 'config', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^push "route 10\.244\.0\.0 255\.255\.0\.0"$/m);
    assert.match(r.stdout, /^push "route 10\.96\.0\.0 255\.240\.0\.0"$/m);
    assert.match(r.stdout, /^push "dns server 0 address 10\.96\.0\.10"$/m);
    assert.doesNotMatch(r.stdout, /fd00/);
    const configured = await runCli(['server', 'config', '--data-dir', dataDir], {
      PODGATE_VPN_ROUTES_PODS: '10.42.0.0/16',
    });
    assert.match(configured.stdout, /^push "route 10\.42\.0\.0 255\.255\.0\.0"$/m);
    assert.doesNotMatch(configured.stdout, /10\.244\.0\.0/);
  });
});
