/**
 * Cluster mode, issue 12: the server certificate renews itself and the pod follows without a
 * `k8s deploy`. Against the real control plane (kube-apiserver v1.34, controllers, scheduler; pods
 * reported Running by the kubelet simulator): ClusterService.syncServerMaterial (what `serve` runs on a
 * timer) puts the renewed certificate in the podgate-server Secret, changes the pod template's checksum
 * annotation and the controllers roll a new ReplicaSet; a renewal that is not due changes nothing; the
 * CA (what clients trust) is unchanged.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterService } from '../../../src/cluster/index.js';
import { applyAll } from '../../../src/cluster/deploy.js';
import type { KubeApi, KubeObject } from '../../../src/cluster/kube-api.js';
import { CHECKSUM_ANNOTATION } from '../../../src/cluster/pod-layout.js';
import { rotateCa } from '../../../src/services/ca-rotation.js';
import type { AppContext } from '../../../src/services/context.js';
import { testContext } from '../../helpers/context.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { adminKubeApi, dropNamespace, realCluster, uniqueName } from '../../helpers/real-cluster.js';

type Obj = KubeObject & { data?: Record<string, string>; spec?: any; status?: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

describe('cluster: a renewed server certificate rolls the pod (real API server)', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let dir: string;
  let ctx: AppContext;
  let ns: string;
  let kube: KubeApi;
  let cluster: ClusterService;
  let nodePort = 30190; // one per test: a deleted namespace releases its NodePort only once it is gone

  const get = async (kind: string, name: string, apiVersion = 'v1') =>
    (await kube.get({ apiVersion, kind, name, namespace: ns })) as Obj;
  const replicaSets = async () =>
    (((await kube.list('apps/v1', 'ReplicaSet', { namespace: ns }))?.items ?? []) as Obj[]).map((rs) => ({
      name: rs.metadata.name!,
      hash: rs.metadata.labels?.['pod-template-hash'],
      replicas: Number(rs.spec?.replicas ?? 0),
      ready: Number(rs.status?.readyReplicas ?? 0),
    }));
  const state = async () => {
    const secret = await get('Secret', 'podgate-server');
    const dep = await get('Deployment', 'podgate-openvpn', 'apps/v1');
    return {
      secret,
      dep,
      cert: new X509Certificate(decode(secret.data!['server.crt']!)),
      ca: decode(secret.data!['ca.crt']!),
      checksum: dep.spec.template.metadata.annotations[CHECKSUM_ANNOTATION] as string,
    };
  };

  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
  });
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-roll-'));
    ns = uniqueName('roll');
    ctx = await testContext(dir, {
      'vpn.dns.servers': ['10.96.0.10'],
      'kubernetes.namespace': ns,
      'kubernetes.nodePort': ++nodePort,
    });
    kube = adminKubeApi(cp);
    cluster = new ClusterService({
      config: ctx.config,
      store: ctx.store,
      server: ctx.server,
      revocation: ctx.revocation,
      kube: () => kube,
      rolloutTimeoutMs: 60_000,
      pollMs: 100,
    });
  });
  afterEach(async () => {
    await ctx?.close();
    rmSync(dir, { recursive: true, force: true });
    if (cp) await dropNamespace(cp, ns);
  });

  it('not deployed: nothing is applied', async () => {
    assert.deepEqual(await cluster.syncServerMaterial(), { rolled: false });
    assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: ns }), undefined);
  });

  it('renewal not due changes nothing; a due renewal updates the Secret and rolls a new ReplicaSet; the CA stays', async () => {
    // The first deploy (as `k8s deploy` does it, with the configured routes instead of discovery).
    const first = await applyAll(await cluster.objects(), { kube, pollMs: 100, rolloutTimeoutMs: 60_000 });
    assert.equal(first.rollout.ready, true);
    const before = await state();
    assert.deepEqual(
      (await replicaSets()).map((r) => [r.replicas, r.ready]),
      [[1, 1]],
    );

    // Not due (the certificate has 825 days left): nothing is applied.
    assert.deepEqual(await cluster.syncServerMaterial(), { rolled: false });
    const same = await state();
    assert.equal(same.secret.metadata.resourceVersion, before.secret.metadata.resourceVersion);
    assert.equal(same.dep.metadata.resourceVersion, before.dep.metadata.resourceVersion);
    assert.equal((await replicaSets()).length, 1);

    // Due: 10 days left (renewal happens 30 days before expiry).
    const stored = JSON.parse((await ctx.store.getSetting('server.identity'))!) as Record<string, string>;
    stored.notAfter = new Date(Date.now() + 10 * 86_400_000).toISOString();
    await ctx.store.setSetting('server.identity', JSON.stringify(stored));
    const lines: string[] = [];
    const r = await cluster.syncServerMaterial((l) => lines.push(l));
    assert.equal(r.rolled, true);
    const byName = Object.fromEntries(r.result!.objects.map((o) => [o.object, o.action]));
    assert.deepEqual(byName, {
      [`Secret ${ns}/podgate-server`]: 'configured',
      [`ConfigMap ${ns}/podgate-openvpn`]: 'unchanged',
      [`Deployment ${ns}/podgate-openvpn`]: 'configured',
    });
    assert.equal(r.result!.rollout.ready, true, lines.join('\n'));

    const after = await state();
    assert.notEqual(
      after.cert.serialNumber,
      before.cert.serialNumber,
      'the Secret holds the new certificate',
    );
    assert.equal(
      after.cert.serialNumber.toUpperCase(),
      (await ctx.store.getValidCertByCommonName('podgate-server'))?.serial,
    );
    assert.ok(after.cert.checkIssued(new X509Certificate(ctx.ca.certPem)));
    assert.equal(after.ca, before.ca, 'the CA is unchanged: clients need nothing');
    assert.notEqual(after.checksum, before.checksum, "the pod template's checksum changed");
    assert.equal(after.dep.metadata.generation, Number(before.dep.metadata.generation) + 1);
    const managers = (after.dep.metadata.managedFields as { manager: string; operation: string }[])
      .filter((m) => m.operation === 'Apply')
      .map((m) => m.manager);
    assert.deepEqual(managers, ['podgate'], 'server-side apply, field manager podgate');

    // The controllers rolled: a new ReplicaSet with the new template, ready; the old one scaled to 0.
    const sets = await replicaSets();
    assert.equal(sets.length, 2, JSON.stringify(sets));
    assert.deepEqual(
      sets.map((s) => [s.replicas, s.ready]).sort(),
      [
        [0, 0],
        [1, 1],
      ],
      JSON.stringify(sets),
    );
    const pods = ((await kube.list('v1', 'Pod', { namespace: ns }))?.items ?? []) as Obj[];
    const live = pods.filter((p) => !p.metadata.deletionTimestamp);
    assert.ok(
      live.some((p) => p.metadata.annotations?.[CHECKSUM_ANNOTATION] === after.checksum),
      'a pod of the new template exists',
    );
    assert.equal((await ctx.store.listAudit({ action: 'k8s.server-material' })).length, 1);

    // And once current, nothing more.
    assert.deepEqual(await cluster.syncServerMaterial(), { rolled: false });
    assert.equal((await state()).dep.metadata.resourceVersion, after.dep.metadata.resourceVersion);
  });

  it('ca rotate made by another process: the running service sees it and rolls the pod with both CAs', async () => {
    await applyAll(await cluster.objects(), { kube, pollMs: 100, rolloutTimeoutMs: 60_000 });
    const before = await state();
    const other = await testContext(dir, { 'kubernetes.namespace': ns, 'kubernetes.nodePort': nodePort });
    try {
      await rotateCa(other, { actor: 'test' });
    } finally {
      await other.close();
    }
    const r = await cluster.syncServerMaterial();
    assert.equal(r.rolled, true);
    assert.equal(r.result!.rollout.ready, true);
    const after = await state();
    assert.equal((after.ca.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'the server trusts both CAs');
    assert.equal(after.cert.serialNumber, before.cert.serialNumber, 'its certificate stays (old CA)');
    assert.notEqual(after.checksum, before.checksum);
    assert.deepEqual(await cluster.syncServerMaterial(), { rolled: false });
  });
});
