/**
 * The real CLI (the bundle, `node dist/bundle/podgate.js`) against the real control plane (test/helpers/real-cluster.ts):
 * k8s discover / manifests / deploy / status, exit codes, the CRL publish of `cert revoke`, and the
 * generated YAML applied by the built kubectl with server-side validation. Each test works in a
 * namespace of its own (`kubernetes.namespace`) with its own NodePort; what it creates in kube-system or
 * at cluster scope it removes.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { runCli, tempDir } from '../../helpers/cli.js';
import { sample } from '../../helpers/k8s-samples.js';
import {
  adminRest,
  dropNamespace,
  ensureKubeDns,
  freshNamespace,
  kubectl,
  realCluster,
  serviceAccountToken,
  tokenKubeConfig,
  uniqueName,
  writeKubeConfig,
} from '../../helpers/real-cluster.js';

let nextNodePort = 30600;

describe('CLI k8s commands against the real API server', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let tmp: { dir: string; cleanup: () => void };
  let env: NodeJS.ProcessEnv;
  let ns: string;
  let port: number;
  const cli = (args: string[], more: NodeJS.ProcessEnv = {}) =>
    runCli(['--data-dir', join(tmp.dir, 'data'), ...args], { ...env, ...more });
  const secretPath = () => `/api/v1/namespaces/${ns}/secrets/podgate-crl`;

  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
    await ensureKubeDns(cp);
  });
  beforeEach(() => {
    tmp = tempDir('podgate-k8s-cli-');
    ns = uniqueName('cli');
    port = nextNodePort++;
    env = {
      PODGATE_KUBERNETES_KUBECONFIG: cp.kubeconfig,
      PODGATE_KUBERNETES_NAMESPACE: ns,
      PODGATE_KUBERNETES_NODE_PORT: String(port),
      PODGATE_KUBERNETES_NODE_PORT_RANGE: '30000-31999',
    };
  });
  afterEach(async () => {
    await dropNamespace(cp, ns);
    tmp.cleanup();
  });

  it('discover prints each range with its source; --json stores the same data', async () => {
    const r = await cli(['k8s', 'discover']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /pod CIDRs: +10\.244\.0\.0\/24, 10\.244\.1\.0\/24 +\[node.spec.podCIDRs \(per-node ranges\)\]/,
    );
    assert.match(
      r.stdout,
      /service CIDRs: +10\.96\.0\.0\/16 +\[ServiceCIDR objects \(networking.k8s.io\/v1\)\]/,
    );
    assert.match(r.stdout, /cluster DNS: +10\.96\.0\.10 +domain cluster.local/);
    assert.match(r.stdout, /node IPs: +172\.18\.0\.2, 172\.18\.0\.3/);
    const j = await cli(['--json', 'k8s', 'discover']);
    assert.deepEqual(JSON.parse(j.stdout).podCidrs, ['10.244.0.0/24', '10.244.1.0/24']);
  });

  it("discover exits 2 naming both ranges when Cilium's default pool overlaps the client subnet", async () => {
    const cilium = sample('cilium-config-cluster-pool-trimmed.json');
    const meta = cilium.metadata as Record<string, unknown>;
    for (const k of ['resourceVersion', 'uid', 'creationTimestamp']) delete meta[k];
    const created = await adminRest(cp, 'POST', '/api/v1/namespaces/kube-system/configmaps', cilium);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    try {
      const r = await cli(['k8s', 'discover']);
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /vpn.clientSubnet 10\.140\.0\.0\/16 overlaps pod CIDR \(cilium-config cluster-pool \(kube-system\)\) 10\.0\.0\.0\/8/,
      );
    } finally {
      await adminRest(cp, 'DELETE', '/api/v1/namespaces/kube-system/configmaps/cilium-config');
    }
  });

  it('deploy twice: the second run reports no change; status shows pods, endpoints and the agent', async () => {
    const first = await cli(['k8s', 'deploy']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`Namespace ${ns} created`));
    assert.match(first.stdout, new RegExp(`Deployment ${ns}/podgate-openvpn created`));
    assert.match(first.stdout, /deploy: 12 object\(s\) changed, rollout ready/);
    const second = await cli(['k8s', 'deploy']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal((second.stdout.match(/ unchanged$/gm) ?? []).length, 12, second.stdout);
    assert.match(second.stdout, /deploy: no change/);
    const st = await cli(['k8s', 'status']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`deployment ${ns}/podgate-openvpn: 1/1 ready`));
    assert.match(st.stdout, new RegExp(`service: NodePort port 30030 nodePort ${port}/UDP`));
    // The pod IP the kubelet simulator reported, from one node's podCIDR.
    assert.match(st.stdout, /endpoints: 10\.244\.[01]\.\d+:30030\/UDP/);
    assert.match(st.stdout, /agent: no CRL applied yet/);
  });

  it('a ServiceAccount without rights on Roles: deploy refuses before applying anything, naming what is missing; with the rights it completes', async () => {
    // A ServiceAccount that may manage namespaces and ServiceAccounts but not Roles: the API server's
    // answer to deploy's access review (SelfSubjectAccessReview) stops it before the first object.
    const home = await freshNamespace(cp, 'cli-sa');
    const role = uniqueName('podgate-cli-partial');
    try {
      await adminRest(cp, 'POST', `/api/v1/namespaces/${home}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'deployer' },
      });
      const verbs = ['get', 'list', 'watch', 'create', 'patch', 'update'];
      await adminRest(cp, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: role },
        rules: [{ apiGroups: [''], resources: ['namespaces', 'serviceaccounts'], verbs }],
      });
      await adminRest(cp, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: role },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: home }],
      });
      const token = await serviceAccountToken(cp, home, 'deployer');
      const kubeconfig = writeKubeConfig(tokenKubeConfig(cp, token), join(tmp.dir, 'partial.kubeconfig'));
      const r = await cli(['k8s', 'deploy'], {
        PODGATE_KUBERNETES_KUBECONFIG: kubeconfig,
        // It may not read the cluster's networks either: discovery only warns, the routes come from config.
        PODGATE_VPN_ROUTES_PODS: '10.244.0.0/16',
        PODGATE_VPN_ROUTES_SERVICES: '10.96.0.0/16',
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`deployer lacks rights to deploy into namespace ${ns}: .*roles`));
      assert.match(r.stderr, /nothing was applied/);
      assert.match(r.stderr, new RegExp(`podgate k8s rbac --namespace ${ns}`));
      const nsAfter = await adminRest(cp, 'GET', `/api/v1/namespaces/${ns}`);
      assert.equal(nsAfter.status, 404, 'the refused deploy created nothing, not even the namespace');
      const again = await cli(['k8s', 'deploy']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`Namespace ${ns} created`));
      assert.match(again.stdout, new RegExp(`Role ${ns}/podgate-agent created`));
    } finally {
      await adminRest(cp, 'DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${role}`);
      await adminRest(cp, 'DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}`);
      await dropNamespace(cp, home);
    }
  });

  it('cert revoke publishes the new CRL to the podgate-crl Secret (kubeconfig configured = cluster mode)', async () => {
    assert.equal((await cli(['k8s', 'deploy'])).code, 0);
    assert.equal((await cli(['user', 'add', 'alice'])).code, 0);
    const issue = await cli(['cert', 'issue', 'alice.laptop', '--owner', 'alice', '--out', join(tmp.dir, 'alice.ovpn')]); // prettier-ignore
    assert.equal(issue.code, 0, issue.stderr);
    type Secret = { metadata: { resourceVersion: string }; data: Record<string, string> };
    const before = (await adminRest<Secret>(cp, 'GET', secretPath())).body;
    const revoke = await cli(['cert', 'revoke', 'alice.laptop', '--reason', 'keyCompromise']);
    assert.equal(revoke.code, 0, revoke.stderr);
    const secret = (await adminRest<Secret>(cp, 'GET', secretPath())).body;
    assert.notEqual(secret.metadata.resourceVersion, before.metadata.resourceVersion);
    const bundle = JSON.parse(Buffer.from(secret.data['revocations.json']!, 'base64').toString('utf8')) as {
      revoked: { commonName: string }[];
    };
    assert.deepEqual(
      bundle.revoked.map((r) => r.commonName),
      ['alice.laptop'],
    );
  });

  it('manifests --out writes private files that `kubectl apply -f DIR` (validation on) applies, and re-applies unchanged', async () => {
    assert.equal((await cli(['k8s', 'discover'])).code, 0);
    const out = join(tmp.dir, 'manifests');
    const r = await cli(['k8s', 'manifests', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(out).sort();
    assert.equal(files.length, 12);
    for (const f of files) assert.equal(statSync(join(out, f)).mode & 0o777, 0o600, f);
    const first = await kubectl(cp, ['apply', '--validate=strict', '-f', out]);
    assert.match(first.stdout, /deployment.apps\/podgate-openvpn created/);
    assert.match(first.stdout, /secret\/podgate-crl created/);
    assert.match(first.stdout, /role.rbac.authorization.k8s.io\/podgate-agent created/);
    const dep = await adminRest<{ spec: { strategy: { type: string } } }>(
      cp,
      'GET',
      `/apis/apps/v1/namespaces/${ns}/deployments/podgate-openvpn`,
    );
    assert.equal(dep.body.spec.strategy.type, 'Recreate');
    const second = await kubectl(cp, ['apply', '--validate=strict', '-f', out]);
    // every object but the PodDisruptionBudget, which kubectl's client-side apply always calls
    // "configured" (kubectl-real.test.ts checks that the API server changes nothing there)
    assert.equal((second.stdout.match(/ unchanged$/gm) ?? []).length, 11, second.stdout);
  });
});
