/**
 * The agent's Secret watch against the real API server through a loopback TCP relay that can go silent:
 * its open connections stop passing bytes without being closed (a half-open path, as after a NAT or
 * load-balancer drop); new connections still work. The source must re-list on its resync deadline.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import { SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { SecretWatchSource } from '../../../src/cluster/secret-watch-source.js';
import type { RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { adminKubeApi, dropNamespace, freshNamespace, realCluster } from '../../helpers/real-cluster.js';

/** Relays 127.0.0.1:port to the API server; silence() freezes every connection open so far. */
async function relay(target: URL): Promise<{ url: string; silence(): void; close(): Promise<void> }> {
  const open: Socket[][] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    open.push([client, upstream]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    silence() {
      for (const [c, u] of open.splice(0)) {
        c.unpipe(u);
        u.unpipe(c);
        c.pause();
        u.pause();
      }
    },
    async close() {
      server.close();
    },
  };
}

const bundle = (n: number): RevocationBundle => ({
  crlNumber: n,
  crlPem: `-----BEGIN X509 CRL-----\nnumber ${n}\n-----END X509 CRL-----\n`,
  revoked: [{ serial: `0${n}`, commonName: `device-${n}`, revokedAt: '2026-11-01T00:00:00.000Z' }],
  reissuedCommonNames: [],
});

describe('Secret watch on the real API server through a path that goes silent', function () {
  this.timeout(90_000);
  let cp: ControlPlane;
  let ns: string;
  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
  });
  beforeEach(async () => {
    ns = await freshNamespace(cp, 'watch');
  });
  afterEach(async () => dropNamespace(cp, ns));

  it('a half-open watch connection: the next revocation still arrives after the resync deadline', async () => {
    const r = await relay(new URL(cp.server));
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfig);
    const through = new KubeConfig();
    through.loadFromOptions({
      clusters: kc.clusters.map((c) => ({ ...c, server: r.url })),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    const publisher = new SecretCrlPublisher(adminKubeApi(cp), ns);
    await publisher.publish(bundle(1));
    const seen: number[] = [];
    const source = new SecretWatchSource({
      kube: createKubeApi(through, { timeoutMs: 2000 }),
      namespace: ns,
      name: 'podgate-crl',
      resyncMs: 3000,
      onBundle: async (b) => seen.push(b.crlNumber),
    });
    try {
      await source.start();
      assert.deepEqual(seen, [1]);
      await publisher.publish(bundle(2));
      for (let i = 0; i < 100 && !seen.includes(2); i++) await new Promise((res) => setTimeout(res, 50));
      assert.deepEqual(seen, [1, 2], 'the live watch delivers');
      r.silence();
      await publisher.publish(bundle(3)); // the watch's connection never passes this on
      for (let i = 0; i < 300 && !seen.includes(3); i++) await new Promise((res) => setTimeout(res, 50));
      assert.deepEqual(seen, [1, 2, 3], 'the re-list after the resync deadline delivered it');
      assert.ok(source.stats.lists >= 2);
    } finally {
      source.stop();
      await r.close();
    }
  });
});
