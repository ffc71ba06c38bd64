/**
 * kubernetes.namespace and kubernetes.nodePort are checked by the rules the real API server applies:
 * each case is first shown to be refused by kube-apiserver v1.34 (started with
 * --service-node-port-range=30000-31999, like a cluster that changed the default), then refused by
 * podgate's config with the field named, before anything is sent.
 */
import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config/load.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { adminRest, realCluster, uniqueName } from '../../helpers/real-cluster.js';

const load = (overrides: Record<string, unknown>) => loadConfig({ env: {}, overrides });

describe('kubernetes.* config follows the real API server', function () {
  this.timeout(60_000);
  let cp: ControlPlane;
  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
  });

  for (const bad of ['podgate.test', 'podgate_test', 'Podgate', 'x'.repeat(64), '-podgate']) {
    it(`namespace "${bad.length > 20 ? `${bad.slice(0, 8)}… (${bad.length})` : bad}": 422 from the API server, a config error naming kubernetes.namespace`, async () => {
      const res = await adminRest<{ reason?: string }>(cp, 'POST', '/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: bad },
      });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.throws(() => load({ 'kubernetes.namespace': bad }), /kubernetes\.namespace.*DNS-1123 label/);
    });
  }

  it('a 63-character DNS-1123 label is accepted by both', async () => {
    const name = `${uniqueName('ok')}-${'a'.repeat(40)}`.slice(0, 63).replace(/-$/, 'a');
    assert.equal(load({ 'kubernetes.namespace': name }).kubernetes.namespace, name);
    const res = await adminRest(cp, 'POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    });
    assert.equal(res.status, 201);
    await adminRest(cp, 'DELETE', `/api/v1/namespaces/${name}`);
  });

  it('nodePort outside the cluster range: 422 from the API server, a config error when nodePortRange says the range', async () => {
    const res = await adminRest<{ message?: string }>(cp, 'POST', '/api/v1/namespaces/default/services', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'podgate-port-check' },
      spec: { type: 'NodePort', ports: [{ port: 1194, protocol: 'UDP', nodePort: 32100 }] },
    });
    if (res.status === 201)
      await adminRest(cp, 'DELETE', '/api/v1/namespaces/default/services/podgate-port-check');
    // (a dry-run create would not allocate, and so accept, the port)
    assert.equal(res.status, 422);
    assert.match(
      String(res.body.message),
      /provided port is not in the valid range. The range of valid ports is 30000-31999/,
    );
    assert.throws(
      () => load({ 'kubernetes.nodePortRange': '30000-31999', 'kubernetes.nodePort': 32100 }),
      /kubernetes\.nodePort: 32100 is outside kubernetes\.nodePortRange 30000-31999/,
    );
    assert.equal(
      load({ 'kubernetes.nodePortRange': '30000-31999', 'kubernetes.nodePort': 31999 }).kubernetes.nodePort,
      31999,
    );
    // a cluster with a range above the usual one
    assert.equal(
      load({ 'kubernetes.nodePortRange': '40000-40100', 'kubernetes.nodePort': 40000 }).kubernetes.nodePort,
      40000,
    );
    assert.throws(() => load({ 'kubernetes.nodePortRange': '32767-30000' }), /kubernetes\.nodePortRange/);
  });
});
