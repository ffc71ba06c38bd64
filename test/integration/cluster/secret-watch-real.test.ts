/**
 * SecretWatchSource (what the agent runs) against the real API server's list and watch: the first list
 * delivers the current bundle, updates arrive through the watch, other Secrets of the namespace never
 * do, a Secret created later is picked up, and a connection reset under the watch (through a TCP
 * relay, so the shared API server keeps running) costs nothing. Stopping the API server itself is a
 * fault for a control plane of a suite's own (faults-real.test.ts), not the shared one. Cases that need the stream to end or history to expire at a chosen moment, or a
 * 403/500 at a chosen call, stay on the fake (test/unit/cluster/secret-watch-source.test.ts).
 */
import assert from 'node:assert/strict';
import { crlSecret } from '../../../src/cluster/manifests.js';
import { SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { SecretWatchSource } from '../../../src/cluster/secret-watch-source.js';
import type { KubeApi } from '../../../src/cluster/kube-api.js';
import { logger, setLogLevel } from '../../../src/lib/logger.js';
import type { RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import {
  adminKubeApi,
  adminKubeConfigVia,
  adminRest,
  dropNamespace,
  freshNamespace,
  realCluster,
  tcpRelay,
} from '../../helpers/real-cluster.js';

const bundle = (n: number): RevocationBundle => ({
  crlNumber: n,
  crlPem: `crl ${n}`,
  revoked: [],
  reissuedCommonNames: [],
});

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SecretWatchSource against the real API server', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let ns: string;
  let kube: KubeApi;
  let source: SecretWatchSource | undefined;
  let got: number[];
  const level = logger.level;

  const publish = (n: number) => new SecretCrlPublisher(kube, ns).publish(bundle(n));
  const start = async () => {
    source = new SecretWatchSource({
      kube,
      namespace: ns,
      name: 'podgate-crl',
      retryMs: 100,
      onBundle: async (b) => void got.push(b.crlNumber),
    });
    await source.start();
    return source;
  };

  before(async function () {
    this.timeout(180_000);
    setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent');
    cp = await realCluster();
  });
  after(() => setLogLevel(level));
  beforeEach(async () => {
    ns = await freshNamespace(cp, 'watch');
    kube = adminKubeApi(cp);
    got = [];
  });
  afterEach(async () => {
    source?.stop();
    source = undefined;
    await dropNamespace(cp, ns);
  });

  it('lists (delivering the current bundle), then watches; another Secret of the namespace never arrives', async () => {
    await publish(1);
    const s = await start();
    assert.deepEqual(got, [1]);
    // Another Secret with the same keys, created and changed while the watch runs.
    const other = crlSecret(ns, bundle(50));
    other.metadata.name = 'other';
    const path = `/api/v1/namespaces/${ns}/secrets`;
    assert.equal((await adminRest(cp, 'POST', path, other)).status, 201);
    await publish(2);
    await until(() => got.length === 2, 'second bundle');
    const changed = crlSecret(ns, bundle(51));
    changed.metadata.name = 'other';
    assert.equal((await adminRest(cp, 'PUT', `${path}/other`, changed)).status, 200);
    await publish(3);
    await until(() => got.length === 3, 'third bundle');
    assert.deepEqual(got, [1, 2, 3]);
    assert.equal(s.stats.lists, 1);
  });

  it('starts with no Secret yet and picks it up when it is created', async () => {
    await start();
    assert.deepEqual(got, []);
    await publish(1);
    await until(() => got.length === 1, 'first bundle');
    assert.deepEqual(got, [1]);
  });

  it('the connection reset under the watch (a real connection loss): it watches again and the next bundle arrives', async () => {
    const relay = await tcpRelay(cp);
    try {
      kube = createKubeApi(adminKubeConfigVia(cp, relay.url), { timeoutMs: 10_000 });
      await publish(1);
      const s = await start();
      const watches = s.stats.watches;
      relay.cut();
      await until(() => s.stats.watches > watches, 'a new watch');
      await publish(2);
      await until(() => got.includes(2), 'bundle after the reset');
      assert.deepEqual(got, [1, 2]);
    } finally {
      source?.stop();
      relay.close();
    }
  });
});
