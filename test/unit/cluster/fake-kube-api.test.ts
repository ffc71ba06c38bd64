/**
 * The fake API server's own fidelity, through the real @kubernetes/client-node: server-side apply
 * ownership and conflicts in the samples' wording, no-op applies, field removal, dry-run, discovery.
 */
import assert from 'node:assert/strict';
import {
  ApiException,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { FakeKubeApi, sample } from '../../helpers/fake-kube-api.js';
import type { JsonObject } from '../../helpers/fake-kube-ssa.js';

const cm = (data: Record<string, string>, labels?: Record<string, string>) =>
  ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'test-cm', namespace: 'default', ...(labels ? { labels } : {}) },
    data,
  }) as KubernetesObject;

describe('fake API server fidelity (real client)', () => {
  let fake: FakeKubeApi;
  let api: KubernetesObjectApi;
  beforeEach(async () => {
    fake = await FakeKubeApi.start();
    api = KubernetesObjectApi.makeApiClient(fake.kubeConfig());
  });
  afterEach(async () => fake.close());

  const apply = (obj: KubernetesObject, manager: string, force?: boolean) =>
    api.patch(obj, undefined, undefined, manager, force, PatchStrategy.ServerSideApply) as Promise<
      KubernetesObject & { data?: Record<string, string> }
    >;

  it('apply: create, no-op keeps resourceVersion, change bumps it, dropped fields are removed', async () => {
    const a = await apply(cm({ key: 'v1', other: 'x' }), 'podgate', true);
    const b = await apply(cm({ key: 'v1', other: 'x' }), 'podgate', true);
    assert.equal(b.metadata?.resourceVersion, a.metadata?.resourceVersion);
    const c = await apply(cm({ key: 'v2' }), 'podgate', true);
    assert.notEqual(c.metadata?.resourceVersion, a.metadata?.resourceVersion);
    assert.deepEqual(c.data, { key: 'v2' });
    const mf = c.metadata?.managedFields?.[0];
    assert.equal(mf?.manager, 'podgate');
    assert.deepEqual(mf?.fieldsV1, { 'f:data': { 'f:key': {} } });
  });

  it('conflict without force: 409 in the wording of ssa-conflict-409-status.json; force takes ownership', async () => {
    await apply(cm({ key: 'some value' }), 'myfm', true);
    await assert.rejects(apply(cm({ key: 'new value' }), 'other'), (err: ApiException<string>) => {
      assert.equal(err.code, 409);
      const body = JSON.parse(err.body) as JsonObject;
      const expected = sample('ssa-conflict-409-status.json');
      assert.equal(body.message, expected.message);
      assert.deepEqual(body.details, expected.details);
      assert.equal(body.reason, 'Conflict');
      return true;
    });
    const forced = await apply(cm({ key: 'new value' }), 'other', true);
    assert.deepEqual(
      forced.metadata?.managedFields?.map((m) => m.manager),
      ['other'],
    );
    // A manager applying the same value as the owner shares the field: no conflict.
    await apply(cm({ key: 'new value' }), 'third');
  });

  it('dry-run create stores nothing; a plain create does; a second create is 409 AlreadyExists', async () => {
    const svc = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's', namespace: 'default' },
      spec: { ports: [{ port: 80 }] },
    } as KubernetesObject;
    await api.create(svc, undefined, 'All');
    assert.equal(fake.getObject('v1', 'Service', 's', 'default'), undefined);
    const created = (await api.create(svc)) as KubernetesObject & { spec: { clusterIP: string } };
    assert.match(created.spec.clusterIP, /^10\.96\.0\.\d+$/);
    await assert.rejects(
      api.create(svc),
      (e: ApiException<string>) => e.code === 409 && /already exists/.test(e.body),
    );
  });

  it('discovery: ServiceCIDR switched off is absent from networking.k8s.io/v1, unknown groups are 404', async () => {
    await fake.close();
    fake = await FakeKubeApi.start({ serviceCidrApi: 'none' });
    const res = await fetch(`${fake.url}/apis/networking.k8s.io/v1`);
    const doc = (await res.json()) as { resources: { name: string }[] };
    assert.ok(!doc.resources.some((r) => r.name === 'servicecidrs'));
    assert.ok(doc.resources.some((r) => r.name === 'ingresses'));
    assert.equal((await fetch(`${fake.url}/apis/networking.k8s.io/v1beta1`)).status, 404);
    assert.equal((await fetch(`${fake.url}/apis/crd.projectcalico.org/v1`)).status, 404);
  });
});
