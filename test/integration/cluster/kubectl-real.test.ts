/**
 * The YAML podgate writes and the k8s/ kustomize base, applied with the built kubectl v1.34.4 to the real
 * API server with validation ON (the server's OpenAPI and field validation); and the rollout checks of
 * deploy against what the real controllers report (PodSecurity, ResourceQuota FailedCreate).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterService } from '../../../src/cluster/index.js';
import type { AppContext } from '../../../src/services/context.js';
import { testContext } from '../../helpers/context.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminKubeApi,
  adminRest,
  dropNamespace,
  freshNamespace,
  kubectl,
  realCluster,
  tempDir,
  uniqueName,
} from '../../helpers/real-cluster.js';

const K8S_DIR = fileURLToPath(new URL('../../../../k8s/', import.meta.url));
let nextNodePort = 31100;

describe('kubectl apply and rollout checks on the real API server', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let tmp: ReturnType<typeof tempDir>;
  let ctx: AppContext;
  const namespaces: string[] = [];

  const serviceFor = async (ns: string) => {
    ctx = await testContext(tmp.dir, {
      'vpn.endpoints': [],
      'kubernetes.namespace': ns,
      'kubernetes.nodePort': nextNodePort++,
    });
    return new ClusterService({
      config: ctx.config,
      store: ctx.store,
      server: ctx.server,
      revocation: ctx.revocation,
      kube: () => adminKubeApi(cp),
      rolloutTimeoutMs: 60_000,
      pollMs: 200,
    });
  };

  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
  });
  beforeEach(() => {
    tmp = tempDir('podgate-kubectl-');
  });
  afterEach(async () => {
    await ctx?.close();
    tmp.remove();
    for (const ns of namespaces.splice(0)) await dropNamespace(cp, ns);
  });

  it('`k8s manifests` YAML: `kubectl apply -f DIR` with server validation creates everything; a second apply is unchanged', async () => {
    const ns = uniqueName('manifests');
    namespaces.push(ns);
    const cluster = await serviceFor(ns);
    const out = join(tmp.dir, 'out');
    mkdirSync(out);
    for (const f of await cluster.manifests()) writeFileSync(join(out, f.name), f.yaml, { mode: 0o600 });
    const first = await kubectl(cp, ['apply', '--validate=strict', '-f', out]);
    assert.equal(
      first.stdout
        .trim()
        .split('\n')
        .filter((l) => / created$/.test(l)).length,
      12,
      first.stdout,
    );
    const second = await kubectl(cp, ['apply', '--validate=strict', '-f', out]);
    assert.equal(
      second.stdout
        .trim()
        .split('\n')
        .filter((l) => / unchanged$/.test(l)).length,
      11,
      second.stdout,
    );
    // kubectl's client-side apply always says "configured" for a PodDisruptionBudget (its selector is
    // replaced, not merged, in the patch it computes); the API server changes nothing: same generation.
    assert.match(second.stdout, /^poddisruptionbudget.policy\/podgate-openvpn configured$/m);
    const pdb = await adminRest<{ metadata: { generation: number } }>(
      cp,
      'GET',
      `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets/podgate-openvpn`,
    );
    assert.equal(pdb.body.metadata.generation, 1);
    const nsLabels = await adminRest<{ metadata: { labels: Record<string, string> } }>(
      cp,
      'GET',
      `/api/v1/namespaces/${ns}`,
    );
    assert.equal(nsLabels.body.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged');
  });

  it('`kubectl apply -k k8s/` with server validation creates the manager, its RBAC and the middleware namespace', async () => {
    const r = await kubectl(cp, ['apply', '--validate=strict', '-k', K8S_DIR]);
    for (const want of [
      'namespace/podgate',
      'namespace/middleware',
      'serviceaccount/podgate-manager',
      'deployment.apps/podgate-manager',
    ]) {
      assert.match(
        r.stdout,
        new RegExp(`^${want.replace('.', '\\.')} (created|unchanged|configured)$`, 'm'),
        r.stdout,
      );
    }
    const mw = await adminRest<{ metadata: { labels: Record<string, string> } }>(
      cp,
      'GET',
      '/api/v1/namespaces/middleware',
    );
    assert.equal(mw.body.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged');

    // what the manager's ServiceAccount may and may not do: rbac-real.test.ts
  });

  it('a namespace enforcing PodSecurity baseline: deploy stops at once saying what to do, nothing applied', async () => {
    const ns = await freshNamespace(cp, 'baseline', { 'pod-security.kubernetes.io/enforce': 'baseline' });
    namespaces.push(ns);
    const cluster = await serviceFor(ns);
    await assert.rejects(cluster.deploy(), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(`namespace ${ns} enforces PodSecurity "baseline", which refuses the OpenVPN pod`),
      );
      assert.match(
        err.message,
        /kubectl label namespace .* pod-security\.kubernetes\.io\/enforce=privileged --overwrite/,
      );
      assert.match(err.message, /nothing was applied/);
      return true;
    });
    const sa = await adminRest(cp, 'GET', `/api/v1/namespaces/${ns}/serviceaccounts/podgate-agent`);
    assert.equal(sa.status, 404);
    // and the real admission agrees: the pod spec is refused at baseline
    const dry = await adminRest<{ message?: string }>(
      cp,
      'POST',
      `/api/v1/namespaces/${ns}/pods?dryRun=All`,
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'probe' },
        spec: {
          containers: [{ name: 'c', image: 'x', securityContext: { capabilities: { add: ['NET_ADMIN'] } } }],
        },
      },
    );
    assert.equal(dry.status, 403);
    assert.match(
      String(dry.body.message),
      /violates PodSecurity "baseline:latest": non-default capabilities/,
    );
  });

  it('a rollout the controllers cannot start (ResourceQuota: FailedCreate) fails with their reason, not a timeout', async () => {
    const ns = await freshNamespace(cp, 'quota');
    namespaces.push(ns);
    const quota = await adminRest(cp, 'POST', `/api/v1/namespaces/${ns}/resourcequotas`, {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'no-pods' },
      spec: { hard: { pods: '0' } },
    });
    assert.equal(quota.status, 201);
    const cluster = await serviceFor(ns);
    await assert.rejects(cluster.deploy(), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(
          `Deployment ${ns}/podgate-openvpn cannot become ready: FailedCreate: .*exceeded quota: no-pods`,
        ),
      );
      return true;
    });
  });
});
