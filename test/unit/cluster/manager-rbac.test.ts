/**
 * The manager's rights as `podgate k8s rbac` prints them: restricted by name, enough to create the agent's
 * Role (RBAC's escalation check: every rule of a Role must be covered by its author's rules), and the
 * missing-rights message deploy prints. The real authorizer checks the same in rbac-real.test.ts.
 */
import assert from 'node:assert/strict';
import { describeMissing, grantCommand } from '../../../src/cluster/deploy-rights.js';
import {
  agentAccessBindingObject,
  agentAccessClusterRole,
  agentRole,
  managerRbac,
  parseSubject,
} from '../../../src/cluster/manager-rbac.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

/** Whether `rules` allow verb on group/resource/name (the RBAC rule match, without wildcards). */
function allows(rules: Rule[], group: string, resource: string, verb: string, name: string): boolean {
  return rules.some(
    (r) =>
      r.apiGroups.includes(group) &&
      r.resources.includes(resource) &&
      r.verbs.includes(verb) &&
      (!r.resourceNames || r.resourceNames.includes(name)),
  );
}

describe('manager RBAC (podgate k8s rbac)', () => {
  const [role, binding, clusterRole, clusterBinding] = managerRbac('vpn');
  const rules = role!.rules as Rule[];

  it('covers every rule of the agent Role it creates (no bind/escalate needed)', () => {
    for (const r of agentRole('vpn').rules as Rule[])
      for (const g of r.apiGroups)
        for (const res of r.resources)
          for (const v of r.verbs)
            for (const n of r.resourceNames ?? ['podgate-replica-any'])
              assert.ok(allows(rules, g, res, v, n), `${v} ${res}/${n}`);
  });

  it('names every object except the pod list and the replica Leases, and never deletes, updates or uses wildcards', () => {
    for (const r of rules) {
      if (r.resources.includes('pods')) assert.deepEqual(r.verbs, ['list']);
      // the replicas' Leases are named after their pods: no name to give in advance
      else if (r.resources.includes('leases')) assert.deepEqual(r.verbs, ['get', 'list', 'create', 'patch']);
      else assert.ok(r.resourceNames?.length, JSON.stringify(r));
      assert.ok(
        !r.verbs.some((v) => ['delete', 'deletecollection', 'update', '*', 'bind', 'escalate'].includes(v)),
      );
      assert.ok(!r.resources.includes('*') && !r.apiGroups.includes('*'));
    }
    assert.ok(!allows(rules, 'rbac.authorization.k8s.io', 'roles', 'patch', 'podgate-manager'), 'own Role');
    assert.deepEqual(clusterRole!.rules, [
      { apiGroups: [''], resources: ['namespaces'], resourceNames: ['vpn'], verbs: ['get', 'patch'] },
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        resourceNames: ['podgate-agent-access'],
        verbs: ['bind'],
      },
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterrolebindings'],
        resourceNames: ['podgate-agent-access-vpn'],
        verbs: ['get', 'create', 'patch'],
      },
    ]);
  });

  it("the agent's access reads: a read-only ClusterRole the admin applies; the manager may bind it to the agent, never change it", () => {
    const accessRole = managerRbac('vpn').find((o) => o.metadata.name === 'podgate-agent-access');
    assert.deepEqual(accessRole, agentAccessClusterRole());
    assert.deepEqual(accessRole!.rules, [
      { apiGroups: [''], resources: ['namespaces', 'pods', 'services'], verbs: ['get', 'list', 'watch'] },
    ]);
    const managerCluster = clusterRole!.rules as Rule[];
    for (const v of ['create', 'patch', 'update', 'escalate'])
      assert.ok(
        !allows(managerCluster, 'rbac.authorization.k8s.io', 'clusterroles', v, 'podgate-agent-access'),
        v,
      );
    assert.ok(
      allows(managerCluster, 'rbac.authorization.k8s.io', 'clusterroles', 'bind', 'podgate-agent-access'),
    );
    assert.ok(!allows(managerCluster, 'rbac.authorization.k8s.io', 'clusterroles', 'bind', 'cluster-admin'));
    const binding = agentAccessBindingObject('vpn');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'podgate-agent', namespace: 'vpn' }]);
    assert.deepEqual(binding.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'podgate-agent-access',
    });
    assert.ok(
      allows(
        managerCluster,
        'rbac.authorization.k8s.io',
        'clusterrolebindings',
        'create',
        binding.metadata.name!,
      ),
    );
    // and the agent's Role reads the access bundle Secret by name, which the manager holds too
    assert.ok(
      allows(agentRole('vpn').rules as Rule[], '', 'secrets', 'watch', 'podgate-access') &&
        allows(rules, '', 'secrets', 'watch', 'podgate-access'),
    );
  });

  it('binds the given ServiceAccount, in the namespace and for that namespace only', () => {
    const [, b] = managerRbac('vpn', { namespace: 'ops', name: 'deployer' });
    assert.deepEqual(b!.subjects, [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'ops' }]);
    assert.equal(binding!.metadata.namespace, 'vpn');
    assert.equal(clusterBinding!.metadata.name, 'podgate-manager-namespace-vpn');
    assert.deepEqual(parseSubject('ops/deployer'), { namespace: 'ops', name: 'deployer' });
    assert.equal(parseSubject('deployer'), undefined);
    assert.equal(parseSubject('Ops/x'), undefined);
  });

  it('the missing-rights message groups by namespace and names the command for that identity', () => {
    assert.equal(
      describeMissing([
        { verb: 'get', group: '', resource: 'namespaces', name: 'vpn' },
        { verb: 'patch', group: '', resource: 'namespaces', name: 'vpn' },
        { verb: 'get', group: 'apps', resource: 'deployments', namespace: 'vpn', name: 'podgate-openvpn' },
        { verb: 'create', group: '', resource: 'secrets', namespace: 'vpn', name: 'podgate-crl' },
      ]),
      'cluster-wide: get, patch namespaces/vpn; in namespace vpn: get deployments.apps/podgate-openvpn; create secrets/podgate-crl',
    );
    assert.equal(
      grantCommand('vpn', 'system:serviceaccount:podgate:podgate-manager'),
      '`podgate k8s rbac --namespace vpn | kubectl apply -f -`',
    );
    assert.equal(
      grantCommand('middleware', 'system:serviceaccount:ops:deployer'),
      '`podgate k8s rbac --namespace middleware --service-account ops/deployer | kubectl apply -f -`',
    );
  });
});
