/**
 * Faults a real API server cannot be made to produce on demand, on the in-process FAKE API server
 * (test/helpers/fake-kube-api.ts): a 504 Timeout Status for one request and a request that never answers.
 * Everything else about deploy runs against the real control plane (deploy.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterService } from '../../../src/cluster/index.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import type { AppContext } from '../../../src/services/context.js';
import { testContext } from '../../helpers/context.js';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';

const NS = 'middleware';

describe('k8s deploy: faults only a fake can inject', function () {
  this.timeout(60_000);
  let dir: string;
  let ctx: AppContext;
  let fake: FakeKubeApi;
  let cluster: ClusterService;

  const service = (timeoutMs = 5000, rolloutTimeoutMs = 5000) =>
    new ClusterService({
      config: ctx.config,
      store: ctx.store,
      server: ctx.server,
      revocation: ctx.revocation,
      kube: () => createKubeApi(fake.kubeConfig(), { timeoutMs }),
      rolloutTimeoutMs,
      pollMs: 20,
    });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-deploy-'));
    ctx = await testContext(dir, { 'vpn.routes.pods': [], 'vpn.routes.services': [], 'vpn.endpoints': [] });
    fake = await FakeKubeApi.start();
    for (const f of [
      'kubeadm-config-v1beta3-single-stack.json',
      'node-kubeadm-kind-single-stack-v1.21.json',
      'service-kube-dns-kubeadm.json',
      'servicecidr-kubernetes-networking-v1.json',
    ]) {
      fake.seedSample(f);
    }
    cluster = service();
  });
  afterEach(async () => {
    await fake?.close();
    await ctx?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const failure of [504, 'hang'] as const) {
    it(`${failure} mid-deploy: the error names the object, and a retry completes`, async () => {
      fake.inject({ verb: 'apply', kind: 'Secret', name: 'podgate-crl', status: failure });
      cluster = service(failure === 'hang' ? 400 : 5000);
      await assert.rejects(cluster.deploy(), (err: Error) => {
        assert.match(err.message, /deploy stopped at Secret middleware\/podgate-crl \(7\/12\)/);
        if (failure === 504) assert.match(err.message, /504 Timeout/);
        if (failure === 'hang') assert.match(err.message, /Timeout: no answer within 400 ms/);
        assert.match(err.message, /the 6 object\(s\) before it were applied, run deploy again to continue/);
        return true;
      });
      assert.equal(
        fake.getObject('apps/v1', 'Deployment', 'podgate-openvpn', NS),
        undefined,
        'stopped before the workload',
      );
      const retry = await cluster.deploy();
      assert.deepEqual(
        retry.objects.map((o) => o.action),
        [...Array(6).fill('unchanged'), ...Array(6).fill('created')],
      );
      assert.equal(retry.rollout.ready, true);
    });
  }
});
