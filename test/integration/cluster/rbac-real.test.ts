/**
 * RBAC proven by the real authorizer (kube-apiserver v1.34, RBAC on): the manager acts with a token of
 * its own ServiceAccount (`podgate-manager` in `podgate`, from `kubectl apply -k k8s/`) and the agent with
 * `podgate-agent`'s. Each can do what it needs (`kubectl auth can-i` for every verb, and the real
 * `podgate k8s deploy`), and a list of things it must not do is refused.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { createKubeApi, loadKubeConfig } from '../../../src/cluster/kube-client.js';
import { managerRbac } from '../../../src/cluster/manager-rbac.js';
import { runCli, type CliResult } from '../../helpers/cli.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminRest,
  canI,
  dropNamespace,
  dropNamespaceAndWait,
  ensureKubeDns,
  kubectl,
  realCluster,
  serviceAccountKubeconfig,
  tempDir,
  uniqueName,
} from '../../helpers/real-cluster.js';

import { replicaLease } from '../../../src/cluster/replica-status.js';

const K8S_DIR = fileURLToPath(new URL('../../../../k8s/', import.meta.url));
const MANAGER = 'system:serviceaccount:podgate:podgate-manager';
let nextNodePort = 31500;

/** Every right the manager needs in its server namespace `ns` (deploy, status, publisher). */
function managerNeedsIn(ns: string): string[][] {
  const named = [
    'secrets/podgate-server',
    'secrets/podgate-crl',
    'configmaps/podgate-openvpn',
    'configmaps/podgate-agent-status',
    'serviceaccounts/podgate-agent',
    'services/podgate-openvpn',
    'deployments.apps/podgate-openvpn',
    'poddisruptionbudgets.policy/podgate-openvpn',
    'roles.rbac.authorization.k8s.io/podgate-agent',
    'rolebindings.rbac.authorization.k8s.io/podgate-agent',
  ];
  return [
    ...named.flatMap((r) => ['get', 'create', 'patch'].map((v) => [v, r, '-n', ns])),
    ['get', `namespaces/${ns}`],
    ['patch', `namespaces/${ns}`],
    ['list', 'pods', '-n', ns],
    ['get', 'endpoints/podgate-openvpn', '-n', ns],
    // the replicas' Leases: list them all, patch one (a disconnect request)
    ['list', 'leases.coordination.k8s.io', '-n', ns],
    ['patch', 'leases.coordination.k8s.io/podgate-replica-x', '-n', ns],
    ...['get', 'create', 'patch'].map((v) => [v, 'secrets/podgate-access', '-n', ns]),
    ...['get', 'create', 'patch'].map((v) => [
      v,
      `clusterrolebindings.rbac.authorization.k8s.io/podgate-agent-access-${ns}`,
    ]),
    ['bind', 'clusterroles.rbac.authorization.k8s.io/podgate-agent-access'],
  ];
}

/** What the manager must never be able to do, with `ns` its server namespace. */
function managerMustNotIn(ns: string): string[][] {
  return [
    ['list', 'secrets', '-A'],
    ['list', 'secrets', '-n', ns],
    ['get', 'secrets', '-n', 'kube-system'],
    ['get', 'secrets/other', '-n', ns],
    ['create', 'secrets', '-n', 'kube-system'],
    ['create', 'deployments.apps', '-n', 'kube-system'],
    ['create', 'deployments.apps/other', '-n', ns],
    ['delete', 'secrets/podgate-crl', '-n', ns],
    ['delete', 'deployments.apps/podgate-openvpn', '-n', ns],
    ['create', 'pods', '-n', ns],
    ['create', 'namespaces'],
    ['delete', `namespaces/${ns}`],
    ['patch', 'namespaces/kube-system'],
    ['get', 'configmaps/other', '-n', 'kube-system'],
    ['create', 'clusterroles.rbac.authorization.k8s.io'],
    ['bind', 'clusterroles.rbac.authorization.k8s.io'],
    ['bind', 'clusterroles.rbac.authorization.k8s.io/cluster-admin'],
    ['escalate', 'roles.rbac.authorization.k8s.io', '-n', ns],
    // the agent's access reads: bound to the agent, never held by the manager, the role never changed
    ['escalate', 'clusterroles.rbac.authorization.k8s.io/podgate-agent-access'],
    ['patch', 'clusterroles.rbac.authorization.k8s.io/podgate-agent-access'],
    ['create', 'clusterrolebindings.rbac.authorization.k8s.io/other'],
    ['list', 'pods', '-A'],
    ['watch', 'pods', '-A'],
    ['list', 'services', '-A'],
    ['delete', 'leases.coordination.k8s.io/podgate-replica-x', '-n', ns],
    ['list', 'leases.coordination.k8s.io', '-n', 'kube-system'],
    ['delete', 'poddisruptionbudgets.policy/podgate-openvpn', '-n', ns],
    // its own rights are the admin's to change
    ['patch', 'roles.rbac.authorization.k8s.io/podgate-manager', '-n', ns],
    ['patch', 'rolebindings.rbac.authorization.k8s.io/podgate-manager', '-n', ns],
  ];
}

async function assertCan(cp: ControlPlane, user: string, yes: string[][], no: string[][]): Promise<void> {
  const wrong: string[] = [];
  for (const a of yes) if ((await canI(cp, user, a)) !== 'yes') wrong.push(`should: ${a.join(' ')}`);
  for (const a of no) if ((await canI(cp, user, a)) !== 'no') wrong.push(`must not: ${a.join(' ')}`);
  assert.deepEqual(wrong, [], `${user}\n${wrong.join('\n')}`);
}

describe('RBAC on the real API server: manager and agent with their own ServiceAccount tokens', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let tmp: ReturnType<typeof tempDir>;
  let managerKubeconfig: string;
  const cleanups: (() => Promise<unknown>)[] = [];

  /** `podgate k8s <args>` as the manager's ServiceAccount, server in `ns`. */
  const podgate = (ns: string, nodePort: number, args: string[]): Promise<CliResult> => {
    const config = join(tmp.dir, `podgate-${ns}.yaml`);
    writeFileSync(
      config,
      JSON.stringify({
        vpn: { endpoints: [], routes: { pods: [], services: [] } },
        kubernetes: { kubeconfig: managerKubeconfig, namespace: ns, nodePort, nodePortRange: '30000-31999' },
      }),
    );
    return runCli(['--config', config, '--data-dir', join(tmp.dir, `data-${ns}`), ...args]);
  };
  const grant = async (ns: string) => {
    const out = await runCli(['k8s', 'rbac', '--namespace', ns]);
    assert.equal(out.code, 0, out.stderr);
    await kubectl(cp, ['apply', '-f', '-'], { input: out.stdout });
  };
  const actions = (stdout: string) =>
    stdout
      .split('\n')
      .filter((l) => / (created|configured|unchanged)$/.test(l))
      .map((l) => l.replace(/^(\S+) \S+ /, '$1 '));

  before(async function () {
    this.timeout(240_000);
    cp = await realCluster();
    await ensureKubeDns(cp);
    tmp = tempDir('podgate-rbac-');
    await kubectl(cp, ['apply', '-k', K8S_DIR]);
    managerKubeconfig = await serviceAccountKubeconfig(
      cp,
      'podgate',
      'podgate-manager',
      join(tmp.dir, 'manager.kubeconfig'),
    );
  });
  after(async () => {
    for (const c of cleanups.splice(0)) await c();
    tmp?.remove();
  });

  it('k8s/rbac-middleware.yaml is what `podgate k8s rbac --namespace middleware` prints', () => {
    const file = parseAllDocuments(readFileSync(join(K8S_DIR, 'rbac-middleware.yaml'), 'utf8')).map((d) =>
      d.toJSON(),
    );
    assert.deepEqual(file, managerRbac('middleware'));
  });

  it('the manager may do what deploy, status and discovery need in middleware, and nothing on the must-not list', async () => {
    await assertCan(
      cp,
      MANAGER,
      [
        ...managerNeedsIn('middleware'),
        ['list', 'nodes'],
        ['list', 'servicecidrs.networking.k8s.io'],
        ['get', 'configmaps/kubeadm-config', '-n', 'kube-system'],
        ['get', 'configmaps/kube-flannel-cfg', '-n', 'kube-flannel'],
        ['get', 'services/kube-dns', '-n', 'kube-system'],
        ['create', 'services', '-n', 'default'],
      ],
      managerMustNotIn('middleware'),
    );
  });

  it('first deploy as the manager into a fresh middleware creates every object; the second says no change; the agent gets exactly its rights', async () => {
    await dropNamespaceAndWait(cp, 'middleware');
    await kubectl(cp, ['apply', '-k', K8S_DIR]); // the admin's install: middleware and the manager's rights
    const port = nextNodePort++;
    const first = await podgate('middleware', port, ['k8s', 'deploy']);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.deepEqual(
      actions(first.stdout),
      [
        'Namespace configured', // created by the admin's kustomize; podgate adds its labels
        'ServiceAccount created',
        'Role created',
        'RoleBinding created',
        'ClusterRoleBinding created',
        'Secret created',
        // the CLI publishes the CRL when it starts (cluster mode), so podgate-crl may be there already
        first.stdout.includes('Secret middleware/podgate-crl unchanged')
          ? 'Secret unchanged'
          : 'Secret created',
        'ConfigMap created',
        'ConfigMap created',
        'Service created',
        'PodDisruptionBudget created',
        'Deployment created',
      ],
      first.stdout,
    );
    const second = await podgate('middleware', port, ['k8s', 'deploy']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^deploy: no change$/m, second.stdout);

    const agent = 'system:serviceaccount:middleware:podgate-agent';
    await assertCan(
      cp,
      agent,
      [
        ['get', 'secrets/podgate-crl', '-n', 'middleware'],
        ['list', 'secrets/podgate-crl', '-n', 'middleware'],
        ['watch', 'secrets/podgate-crl', '-n', 'middleware'],
        ['get', 'configmaps/podgate-agent-status', '-n', 'middleware'],
        ['patch', 'configmaps/podgate-agent-status', '-n', 'middleware'],
        ['watch', 'secrets/podgate-access', '-n', 'middleware'],
        ['list', 'pods', '-A'],
        ['watch', 'namespaces'],
        ['watch', 'services', '-A'],
        ['create', 'leases.coordination.k8s.io', '-n', 'middleware'],
        ['patch', 'leases.coordination.k8s.io/podgate-replica-x', '-n', 'middleware'],
      ],
      [
        ['get', 'secrets/podgate-server', '-n', 'middleware'],
        ['list', 'secrets', '-n', 'middleware'],
        ['patch', 'secrets/podgate-crl', '-n', 'middleware'],
        ['patch', 'configmaps/podgate-openvpn', '-n', 'middleware'],
        ['create', 'configmaps', '-n', 'middleware'],
        ['get', 'secrets', '-n', 'kube-system'],
        ['list', 'secrets', '-A'],
        ['patch', 'pods', '-n', 'default'],
        ['create', 'services', '-n', 'default'],
        ['list', 'leases.coordination.k8s.io', '-n', 'middleware'],
        ['delete', 'leases.coordination.k8s.io/podgate-replica-x', '-n', 'middleware'],
        ['create', 'leases.coordination.k8s.io', '-n', 'kube-system'],
      ],
    );
    // and with its real token, the requests the agent makes (a list selecting its Secret by name, the
    // status patch) pass, while a plain list of the namespace's Secrets is refused
    const agentApi = createKubeApi(
      loadKubeConfig(
        {
          kubeconfig: await serviceAccountKubeconfig(
            cp,
            'middleware',
            'podgate-agent',
            join(tmp.dir, 'agent.kubeconfig'),
          ),
        },
        process.env,
      ),
    );
    const own = await agentApi.list('v1', 'Secret', {
      namespace: 'middleware',
      fieldSelector: 'metadata.name=podgate-crl',
    });
    assert.deepEqual(
      own?.items.map((s) => s.metadata.name),
      ['podgate-crl'],
    );
    await assert.rejects(agentApi.list('v1', 'Secret', { namespace: 'middleware' }), /403 Forbidden/);
    await agentApi.mergePatch(
      { apiVersion: 'v1', kind: 'ConfigMap', name: 'podgate-agent-status', namespace: 'middleware' },
      { data: { pod: 'checked' } },
    );
    // its replica Lease, created and renewed by server-side apply as the agent does
    const report = { pod: 'podgate-openvpn-x', management: true, sessions: [], handled: {}, updatedAt: '' };
    for (let i = 0; i < 2; i++)
      await agentApi.apply(replicaLease('middleware', { name: 'podgate-openvpn-x' }, report, new Date()));
  });

  it('middleware deleted: deploy as the manager stops before applying anything, naming each missing right and the command; after the admin runs it, deploy creates everything', async () => {
    await dropNamespaceAndWait(cp, 'middleware');
    const port = nextNodePort++;
    const refused = await podgate('middleware', port, ['k8s', 'deploy']);
    assert.notEqual(refused.code, 0);
    const msg = refused.stderr;
    assert.match(msg, new RegExp(`${MANAGER} lacks rights to deploy into namespace middleware`), msg);
    assert.match(msg, /cluster-wide: create namespaces\/middleware/, msg);
    assert.match(msg, /in namespace middleware: get, patch serviceaccounts\/podgate-agent;/, msg);
    assert.match(msg, /get, patch deployments\.apps\/podgate-openvpn/, msg);
    assert.match(msg, /nothing was applied/, msg);
    assert.match(
      msg,
      /`podgate k8s rbac --namespace middleware \| kubectl apply -f -` \(or `kubectl apply -k k8s\/` again\)/,
      msg,
    );
    assert.equal((await adminRest(cp, 'GET', '/api/v1/namespaces/middleware')).status, 404);

    await grant('middleware');
    const r = await podgate('middleware', port, ['k8s', 'deploy']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(actions(r.stdout).filter((a) => a.endsWith(' created')).length >= 8, r.stdout);
    await kubectl(cp, ['apply', '-k', K8S_DIR]); // leave the shared cluster as the admin's install left it
  });

  it('another kubernetes.namespace: refused with the command to run; after `podgate k8s rbac --namespace NS | kubectl apply -f -` the first deploy creates everything and the second says no change', async () => {
    const ns = uniqueName('vpn');
    cleanups.push(() => dropNamespace(cp, ns));
    cleanups.push(() =>
      adminRest(
        cp,
        'DELETE',
        `/apis/rbac.authorization.k8s.io/v1/clusterroles/podgate-manager-namespace-${ns}`,
      ),
    );
    cleanups.push(() =>
      adminRest(
        cp,
        'DELETE',
        `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/podgate-manager-namespace-${ns}`,
      ),
    );
    cleanups.push(() =>
      adminRest(
        cp,
        'DELETE',
        `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/podgate-agent-access-${ns}`,
      ),
    );
    const port = nextNodePort++;
    const refused = await podgate(ns, port, ['k8s', 'deploy']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`get, patch namespaces/${ns}`), refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(
        `get, patch clusterrolebindings\\.rbac\\.authorization\\.k8s\\.io/podgate-agent-access-${ns}`,
      ),
      refused.stderr,
    );
    assert.match(refused.stderr, new RegExp(`\`podgate k8s rbac --namespace ${ns} \\| kubectl apply -f -\``));
    assert.equal((await adminRest(cp, 'GET', `/api/v1/namespaces/${ns}`)).status, 404);

    await grant(ns);
    const first = await podgate(ns, port, ['k8s', 'deploy']);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.ok(actions(first.stdout).filter((a) => a.endsWith(' created')).length >= 8, first.stdout);
    const second = await podgate(ns, port, ['k8s', 'deploy']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^deploy: no change$/m, second.stdout);
    const status = await podgate(ns, port, ['k8s', 'status']);
    assert.equal(status.code, 0, status.stderr);

    // rights in NS only: not in middleware's neighbour created for this test, not its namespace's deletion
    const other = uniqueName('other');
    cleanups.push(() => dropNamespace(cp, other));
    await adminRest(cp, 'POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: other },
    });
    await assertCan(cp, MANAGER, managerNeedsIn(ns), [
      ...managerMustNotIn(ns),
      ['get', 'secrets/podgate-server', '-n', other],
      ['create', 'deployments.apps/podgate-openvpn', '-n', other],
      ['patch', `namespaces/${other}`],
    ]);
  });

  it('access check as the manager: a ClusterIP lookup is refused naming k8s/rbac-access-view.yaml; with that file applied it names the Service; the file grants no watch and no Secret', async () => {
    const port = nextNodePort++;
    assert.equal((await podgate('middleware', port, ['user', 'add', 'bob'])).code, 0);
    const dnsIp = (
      await kubectl(cp, [
        '-n',
        'kube-system',
        'get',
        'service',
        'kube-dns',
        '-o',
        'jsonpath={.spec.clusterIP}',
      ])
    ).stdout.trim();
    const refused = await podgate('middleware', port, ['access', 'check', 'bob', dnsIp]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /may not list services cluster-wide/, refused.stderr);
    assert.match(refused.stderr, /kubectl apply -f k8s\/rbac-access-view\.yaml/, refused.stderr);

    const file = join(K8S_DIR, 'rbac-access-view.yaml');
    cleanups.push(() => kubectl(cp, ['delete', '--ignore-not-found', '-f', file]));
    await kubectl(cp, ['apply', '-f', file]);
    await assertCan(
      cp,
      MANAGER,
      [
        ['list', 'pods', '-A'],
        ['list', 'services', '-A'],
        ['list', 'namespaces'],
      ],
      [
        ['watch', 'pods', '-A'],
        ['list', 'secrets', '-A'],
        ['create', 'pods', '-n', 'default'],
        ['get', 'pods', '--subresource=log', '-n', 'default'],
        ['create', 'pods', '--subresource=exec', '-n', 'default'],
      ],
    );
    const answered = await podgate('middleware', port, ['--json', 'access', 'check', 'bob', dnsIp]);
    assert.equal(answered.code, 0, answered.stderr);
    const a = JSON.parse(answered.stdout) as { decision: string; evaluatedWith: string };
    assert.equal(a.evaluatedWith, 'cluster');
    assert.equal(a.decision, 'deny');
    await kubectl(cp, ['delete', '-f', file]);
  });
});
