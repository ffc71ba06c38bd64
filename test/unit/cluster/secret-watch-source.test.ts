/**
 * SecretWatchSource against the in-process fake, only for faults a real API server cannot be made to
 * produce at a chosen moment: the watch stream ending between two writes, history compacted (410) right
 * then, and a 403/500 on chosen calls. List, watch, the name selector and an API server restart run
 * against the real control plane in test/integration/cluster/secret-watch-real.test.ts.
 */
import assert from 'node:assert/strict';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import { crlSecret } from '../../../src/cluster/manifests.js';
import { SecretWatchSource } from '../../../src/cluster/secret-watch-source.js';
import type { RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import type { JsonObject } from '../../helpers/fake-kube-ssa.js';

const NS = 'middleware';
const bundle = (n: number): RevocationBundle => ({
  crlNumber: n,
  crlPem: `crl ${n}`,
  revoked: [],
  reissuedCommonNames: [],
});

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('SecretWatchSource on the fake: faults at a chosen moment', () => {
  let fake: FakeKubeApi;
  let source: SecretWatchSource | undefined;
  let got: number[];

  const publish = (n: number) => fake.seed(crlSecret(NS, bundle(n)) as unknown as JsonObject);
  const start = async () => {
    source = new SecretWatchSource({
      kube: createKubeApi(fake.kubeConfig()),
      namespace: NS,
      name: 'podgate-crl',
      retryMs: 20,
      onBundle: async (b) => void got.push(b.crlNumber),
    });
    await source.start();
    return source;
  };

  before(() => setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent'));
  beforeEach(async () => {
    fake = await FakeKubeApi.start();
    got = [];
    fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    // Another Secret in the namespace must never reach the agent.
    fake.seed({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'other', namespace: NS },
      data: { x: 'eA==' },
    });
  });
  afterEach(async () => {
    source?.stop();
    source = undefined;
    await fake.close();
  });

  it('stream end: re-watches from the last seen version, missing nothing and repeating nothing', async () => {
    publish(1);
    const s = await start();
    fake.endWatches();
    publish(2); // lands between the end of one watch and the start of the next
    await until(() => got.length === 2 && s.stats.watches >= 2, 're-watch');
    publish(3);
    await until(() => got.length === 3, 'third bundle');
    assert.deepEqual(got, [1, 2, 3]);
    assert.equal(s.stats.lists, 1, 'no re-list needed');
  });

  it('410 Expired (compacted history): the ERROR event makes it re-list, and the newest bundle is applied', async () => {
    publish(1);
    const s = await start();
    // All synchronous: the watch ends, a new bundle lands and history is compacted before the re-watch.
    fake.endWatches();
    publish(2);
    fake.compact();
    await until(() => got.includes(2), 'bundle after re-list');
    assert.equal(s.stats.lists, 2, 'one re-list after 410');
    assert.deepEqual(got, [1, 2]);
  });

  it('API errors while re-listing are retried with backoff', async () => {
    publish(1);
    const s = await start();
    fake.inject({ verb: 'list', kind: 'Secret', status: 403, times: 2 });
    fake.inject({ verb: 'watch', kind: 'Secret', status: 500, times: 1 });
    fake.endWatches();
    fake.compact();
    publish(2);
    // The re-watch from lastRv fails with 500, two re-lists get 403, the third works.
    await until(() => got.includes(2), 'bundle after errors');
    assert.ok(s.stats.lists >= 2);
  });
});
