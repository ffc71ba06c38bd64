/**
 * The CRL Secret publisher of the composition root: none without a cluster; `prepare()` (called by a
 * CLI revoke before it opens the store, and by `serve` at start) never throws nor leaves an unhandled
 * rejection when the API server cannot be reached, and the publish that needs the client reports the
 * failure. A closed loopback port stands in for an unreachable API server (a real refusal, no fake).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterPublisherFor } from '../../../src/cluster/cluster-publisher.js';
import { configSchema } from '../../../src/config/schema.js';
import { makeTestPki } from '../../helpers/openvpn.js';

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('cluster/cluster-publisher', function () {
  this.timeout(30_000);
  const dir = mkdtempSync(join(tmpdir(), 'podgate-pub-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('no publisher (and no client to prepare) without a kubeconfig or a pod environment', () => {
    assert.equal(clusterPublisherFor(configSchema.parse({}), {}), undefined);
  });

  it('prepare() against an unreachable API server neither throws nor rejects unhandled; publish reports it', async () => {
    const port = await closedPort();
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{ name: c, cluster: { server: "https://127.0.0.1:' +
          port +
          '", insecure-skip-tls-verify: true } }]',
        'users: [{ name: u, user: { token: t } }]',
        'contexts: [{ name: x, context: { cluster: c, user: u } }]',
        'current-context: x',
        '',
      ].join('\n'),
    );
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const config = configSchema.parse({ kubernetes: { kubeconfig } });
      const publisher = clusterPublisherFor(config, {}, { keepWarm: true })!;
      assert.ok(publisher.prepare, 'the cluster publisher can be prepared');
      publisher.prepare();
      publisher.prepare(); // a second call reuses the first preparation
      await new Promise((r) => setTimeout(r, 500)); // the warm-up's refused request has come back
      const pki = await makeTestPki();
      const bundle = { crlNumber: 1, crlPem: pki.nextCrl(), revoked: [], reissuedCommonNames: [] };
      await assert.rejects(publisher.publish(bundle));
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
