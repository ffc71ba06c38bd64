/**
 * The k8s-postgres/ overlay (2+ manager replicas on PostgreSQL), built with the real `kubectl kustomize`
 * (v1.34.4) and validated against the Kubernetes OpenAPI schemas: no PVC, RollingUpdate without
 * unavailability, every pod gets the store URL, the database password and the CA key secret from
 * Secrets, and the manager may hold its Lease (and only that one).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { requireBinaries } from '../../cluster/binaries.js';

const OVERLAY = fileURLToPath(new URL('../../../../k8s-postgres/', import.meta.url));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = { kind: string; metadata: { name: string; namespace?: string }; [k: string]: any };

describe('k8s-postgres/ overlay: the manager with 2 replicas on PostgreSQL', () => {
  let objects: Obj[];
  before(async () => {
    const { kubectl } = requireBinaries(['kubectl']);
    const { stdout } = await promisify(execFile)(kubectl, ['kustomize', OVERLAY], { encoding: 'utf8' });
    objects = parseAllDocuments(stdout).map((d) => d.toJSON() as Obj);
  });

  it('2 replicas, RollingUpdate with maxUnavailable 0, no PVC, emptyDir data; the Deployment validates', () => {
    assert.equal(objects.filter((o) => o.kind === 'PersistentVolumeClaim').length, 0);
    const d = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'podgate-manager')!;
    new Deployment(d as never).validate();
    assert.equal(d.spec.replicas, 2);
    assert.equal(d.spec.strategy.type, 'RollingUpdate');
    assert.equal(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
    const data = d.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'data');
    assert.deepEqual(data, { name: 'data', emptyDir: {} });
    const env = Object.fromEntries(
      d.spec.template.spec.containers[0].env.map((e: { name: string; value?: string }) => [
        e.name,
        e.value ?? 'from',
      ]),
    );
    assert.match(env.PODGATE_STORE_URL, /^postgres:\/\/podgate@/);
    assert.equal(env.PODGATE_STORE_PASSWORD_FILE, '/etc/podgate/postgres/password');
    assert.equal(env.PODGATE_CA_PASSPHRASE_FILE, '/etc/podgate/ca/passphrase');
    assert.equal(env.PODGATE_STORE_LEASE_NAMESPACE, 'from');
    assert.equal(env.PODGATE_DATA_DIR, '/data/podgate', 'the base settings stay');
  });

  it('the manager may create Leases and get/patch only podgate-manager', () => {
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'podgate-manager-lease')!;
    new Role(role as never).validate();
    assert.deepEqual(role.rules, [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['podgate-manager'],
        verbs: ['get', 'patch'],
      },
    ]);
    const binding = objects.find(
      (o) => o.kind === 'RoleBinding' && o.metadata.name === 'podgate-manager-lease',
    )!;
    new RoleBinding(binding as never).validate();
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: 'podgate-manager', namespace: 'podgate' },
    ]);
  });
});
