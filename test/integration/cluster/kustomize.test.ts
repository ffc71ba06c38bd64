/**
 * The k8s/ kustomize base (the manager running in the cluster): built with the real `kubectl kustomize`
 * (v1.34.4, built with the test cluster; a missing kubectl fails the test), every object validated against
 * the Kubernetes OpenAPI schemas, and the properties the manager depends on checked.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { requireBinaries } from '../../cluster/binaries.js';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Service } from 'kubernetes-models/v1/Service';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';

const K8S_DIR = fileURLToPath(new URL('../../../../k8s/', import.meta.url));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  Namespace,
  ServiceAccount,
  Service,
  PersistentVolumeClaim,
  Deployment,
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = { kind: string; metadata: { name: string; namespace?: string }; [k: string]: any };

async function build(): Promise<{ objects: Obj[]; via: string }> {
  // kubectl v1.34.4 built from source with the test cluster (npm test builds it first); missing = failure
  const { kubectl } = requireBinaries(['kubectl']);
  const { stdout } = await promisify(execFile)(kubectl, ['kustomize', K8S_DIR], { encoding: 'utf8' });
  return { objects: parseAllDocuments(stdout).map((d) => d.toJSON() as Obj), via: 'kubectl kustomize' };
}

describe('k8s/ kustomize base for the manager', () => {
  let objects: Obj[];
  before(async () => {
    const r = await build();
    objects = r.objects;
  });
  const find = (kind: string, name: string, namespace?: string) => {
    const o = objects.find(
      (x) =>
        x.kind === kind &&
        x.metadata.name === name &&
        (namespace === undefined || x.metadata.namespace === namespace),
    );
    assert.ok(o, `${kind} ${namespace ?? ''}/${name}`);
    return o;
  };

  it('every object validates against the Kubernetes OpenAPI schema', () => {
    assert.ok(objects.length >= 14);
    for (const o of objects) {
      const Model = MODELS[o.kind];
      assert.ok(Model, `model for ${o.kind}`);
      assert.doesNotThrow(() => new Model(structuredClone(o)).validate(), `${o.kind} ${o.metadata.name}`);
    }
  });

  it('one manager replica with Recreate, non-root, the PVC at the data dir, health probes', () => {
    const d = find('Deployment', 'podgate-manager', 'podgate');
    assert.equal(d.spec.replicas, 1);
    assert.equal(d.spec.strategy.type, 'Recreate');
    assert.equal(d.spec.template.spec.securityContext.runAsNonRoot, true);
    const c = d.spec.template.spec.containers[0];
    assert.deepEqual(c.command, ['podgate', 'serve']);
    assert.ok(
      c.env.some(
        (e: { name: string; value: string }) => e.name === 'PODGATE_DATA_DIR' && e.value === '/data/podgate',
      ),
    );
    assert.ok(
      c.volumeMounts.some(
        (m: { name: string; mountPath: string }) => m.name === 'data' && m.mountPath === '/data',
      ),
    );
    assert.equal(
      d.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'data').persistentVolumeClaim
        .claimName,
      'podgate-data',
    );
    find('PersistentVolumeClaim', 'podgate-data', 'podgate');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.deepEqual(
      find('Service', 'podgate-manager', 'podgate').spec.selector,
      d.spec.selector.matchLabels,
    );
  });

  it('RBAC covers what discovery reads and what deploy applies, no more', () => {
    const cr = find('ClusterRole', 'podgate-manager-discovery');
    const rule = (res: string) => cr.rules.find((r: { resources: string[] }) => r.resources.includes(res));
    assert.deepEqual(rule('nodes').verbs, ['get', 'list']);
    assert.deepEqual(rule('servicecidrs').apiGroups, ['networking.k8s.io']);
    assert.equal(rule('namespaces'), undefined, 'no namespace right cluster-wide');
    assert.deepEqual(find('ClusterRole', 'podgate-manager-namespace-middleware').rules, [
      { apiGroups: [''], resources: ['namespaces'], resourceNames: ['middleware'], verbs: ['get', 'patch'] },
      // bind the agent's read-only access role to the agent, and nothing else of RBAC
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        resourceNames: ['podgate-agent-access'],
        verbs: ['bind'],
      },
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterrolebindings'],
        resourceNames: ['podgate-agent-access-middleware'],
        verbs: ['get', 'create', 'patch'],
      },
    ]);
    assert.deepEqual(find('ClusterRole', 'podgate-agent-access').rules, [
      { apiGroups: [''], resources: ['namespaces', 'pods', 'services'], verbs: ['get', 'list', 'watch'] },
    ]);
    const ks = find('Role', 'podgate-manager-discovery', 'kube-system');
    assert.deepEqual(ks.rules[0].resourceNames, ['kubeadm-config', 'cilium-config']);
    assert.deepEqual(
      cr.rules.find((r: { resources: string[] }) => r.resources.includes('configmaps')).resourceNames,
      ['kube-flannel-cfg'],
    );
    // every namespaced right of the manager is restricted to podgate's object names, except listing pods
    // and the replicas' Leases (named after their pods, so RBAC cannot name them in advance; the manager
    // holds get/create because the agent's Role, which it applies, grants them)
    const mw = find('Role', 'podgate-manager', 'middleware');
    for (const r of mw.rules as { resources: string[]; resourceNames?: string[]; verbs: string[] }[]) {
      if (r.resources.includes('pods')) assert.deepEqual(r.verbs, ['list']);
      else if (r.resources.includes('leases')) assert.deepEqual(r.verbs, ['get', 'list', 'create', 'patch']);
      else assert.ok(r.resourceNames && r.resourceNames.length > 0, JSON.stringify(r));
      for (const v of ['delete', 'update', 'deletecollection', '*']) assert.ok(!r.verbs.includes(v), v);
    }
    assert.deepEqual(find('Role', 'podgate-manager-probe', 'default').rules, [
      { apiGroups: [''], resources: ['services'], verbs: ['create'] },
    ]);
    for (const b of objects.filter((o) => o.kind.endsWith('Binding'))) {
      assert.deepEqual(b.subjects, [
        { kind: 'ServiceAccount', name: 'podgate-manager', namespace: 'podgate' },
      ]);
    }
  });
});
