/**
 * The Secret writer over node:https (src/cluster/kube-secrets.ts) against the real API server: a
 * kubeconfig with client certificates and one with a ServiceAccount bearer token, 404 read as absent,
 * a stale resourceVersion answered 409 (what applyUnlessNewer retries on), credentials the server
 * refuses (401, naming the kubeconfig) or a token without rights (403); and a CLI `cert revoke` in cluster
 * mode that writes the podgate-crl Secret without loading the Kubernetes client, express or ssh2.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeApiError, type KubeApi, type KubeObject } from '../../../src/cluster/kube-api.js';
import { createSecretsApi } from '../../../src/cluster/kube-secrets.js';
import { resolveKube } from '../../../src/cluster/kubeconfig.js';
import { primed } from '../../../src/cluster/cluster-publisher.js';
import { applyUnlessNewer } from '../../../src/cluster/secret-publisher.js';
import { bundleFromSecret } from '../../../src/cluster/secret-watch-source.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { BUNDLE, runCli, tempDir } from '../../helpers/cli.js';
import {
  adminRest,
  dropNamespace,
  freshNamespace,
  realCluster,
  serviceAccountKubeconfig,
  tokenKubeConfig,
  writeKubeConfig,
} from '../../helpers/real-cluster.js';
import { heavyIn, traced } from '../../helpers/traced-cli.js';

const noFullClient = async (): Promise<KubeApi> => {
  throw new Error('the full client was asked for');
};

describe('Secret writer over node:https (real API server)', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let ns: string;
  let tmp: { dir: string; cleanup: () => void };
  const opened: { close(): void }[] = [];
  const writer = (kubeconfig: string) => {
    const { target } = resolveKube({ kubeconfig }, { HOME: tmp.dir });
    assert.ok(target, `${kubeconfig}: the Secret writer should read it`);
    const api = createSecretsApi(target, noFullClient, { timeoutMs: 10_000 });
    opened.push(api);
    return api;
  };
  const secret = (name: string, value: string, resourceVersion?: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, ...(resourceVersion ? { resourceVersion } : {}) },
    type: 'Opaque',
    data: { v: Buffer.from(value).toString('base64') },
  });
  const ref = (name: string) => ({ apiVersion: 'v1', kind: 'Secret', name, namespace: ns });
  const rejectsWith = async (p: Promise<unknown>, status: number, message?: RegExp) => {
    const err = await p.then(
      () => assert.fail(`expected ${status}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof KubeApiError, String(err));
    assert.equal(err.kubeStatus, status, err.message);
    if (message) assert.match(err.message, message);
  };

  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
  });
  beforeEach(async () => {
    tmp = tempDir('podgate-kube-secrets-');
    ns = await freshNamespace(cp, 'secrets');
  });
  afterEach(async () => {
    for (const o of opened.splice(0)) o.close();
    await dropNamespace(cp, ns);
    tmp.cleanup();
  });

  it('client certificates: 404 is absent, apply creates and updates, a stale resourceVersion is 409', async () => {
    const api = writer(cp.kubeconfig);
    assert.equal(await api.get(ref('s1')), undefined);
    const created = await api.apply(secret('s1', 'one'));
    assert.equal(created.metadata.name, 's1');
    const first = created.metadata.resourceVersion!;
    const live = (await api.get(ref('s1'))) as unknown;
    assert.equal((live as { data: { v: string } }).data.v, Buffer.from('one').toString('base64'));
    const updated = await api.apply(secret('s1', 'two', first));
    assert.notEqual(updated.metadata.resourceVersion, first);
    assert.ok(
      (updated.metadata.managedFields as { manager?: string }[]).some((f) => f.manager === 'podgate'),
      'applied with field manager podgate',
    );
    await rejectsWith(api.apply(secret('s1', 'three', first)), 409);
    const after = (await api.get(ref('s1'))) as unknown as { data: { v: string } };
    assert.equal(after.data.v, Buffer.from('two').toString('base64'), 'the 409 changed nothing');
  });

  it('a ServiceAccount bearer token with rights to Secrets in the namespace', async () => {
    await adminRest(cp, 'POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'writer' },
    });
    await adminRest(cp, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'secrets' },
      rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'patch', 'update'] }],
    });
    await adminRest(cp, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'secrets' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'secrets' },
      subjects: [{ kind: 'ServiceAccount', name: 'writer', namespace: ns }],
    });
    const file = await serviceAccountKubeconfig(cp, ns, 'writer', join(tmp.dir, 'writer.kubeconfig'));
    const api = writer(file);
    assert.equal(await api.get(ref('s2')), undefined);
    await api.apply(secret('s2', 'token'));
    assert.ok(await api.get(ref('s2')));
    // the same token in another namespace: the authorizer refuses it
    await rejectsWith(
      api.get({ ...ref('s2'), namespace: 'default' }),
      403,
      /read Secret default\/s2: 403 Forbidden/,
    );
  });

  it('a token the API server does not accept: 401 naming the kubeconfig, nothing written', async () => {
    const file = writeKubeConfig(tokenKubeConfig(cp, 'not-a-token'), join(tmp.dir, 'bad.kubeconfig'));
    const api = writer(file);
    await rejectsWith(
      api.apply(secret('s3', 'x')),
      401,
      new RegExp(`did not accept the credentials of kubeconfig ${file.replace(/[.]/g, '\\.')}`),
    );
    assert.equal(await writer(cp.kubeconfig).get(ref('s3')), undefined);
  });

  it('a Secret read ahead (primed) and changed before the write: 409, read again, the newer one kept', async () => {
    const api = writer(cp.kubeconfig);
    await api.apply(secret('s4', '1'));
    const ahead = primed(api, ref('s4'));
    await new Promise((r) => setTimeout(r, 50)); // the read ahead has answered
    await writer(cp.kubeconfig).apply(secret('s4', '3')); // another writer, a newer value
    const value = (o: KubeObject) =>
      Number(Buffer.from((o as unknown as { data: { v: string } }).data.v, 'base64'));
    const seen: number[] = [];
    const r = await applyUnlessNewer(ahead, secret('s4', '2'), {
      what: 'value 2',
      holdsNewer: (live) => (seen.push(value(live)), value(live) > 2),
    });
    assert.deepEqual(seen, [1, 3], 'the stale read ahead first, then the live Secret after the 409');
    assert.equal(r.written, false);
    assert.equal(value((await api.get(ref('s4')))!), 3, 'the newer value stays');
  });

  it('CLI cert revoke in cluster mode writes the podgate-crl Secret and loads no Kubernetes client', async () => {
    const env = {
      PODGATE_KUBERNETES_KUBECONFIG: cp.kubeconfig,
      PODGATE_KUBERNETES_NAMESPACE: ns,
      PODGATE_VPN_ENDPOINTS: '172.18.12.21',
      PODGATE_ADMIN_PASSWORD_FILE: join(tmp.dir, 'admin.pw'),
      HOME: tmp.dir,
    };
    writeFileSync(join(tmp.dir, 'admin.pw'), 'admin-password-for-tests\n');
    const data = join(tmp.dir, 'data');
    const cli = async (args: string[]) => {
      const r = await runCli(['--data-dir', data, ...args], env);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    };
    await cli(['init']);
    await cli(['cert', 'issue', 'lap', '--owner', 'admin', '--out', join(tmp.dir, 'lap.ovpn')]);
    const r = await traced(
      [BUNDLE, '--data-dir', data, 'cert', 'revoke', 'lap', '--reason', 'keyCompromise'],
      tmp.dir,
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.modules.length > 0, 'the trace recorded nothing');
    assert.deepEqual(heavyIn(r.modules), []);
    // the harness's kubeconfig is block YAML: read without the yaml package
    assert.deepEqual(
      r.modules.filter((m) => m.includes('/node_modules/yaml/') || /\/chunks\/yaml\b/.test(m)),
      [],
    );
    const stored = await writer(cp.kubeconfig).get(ref('podgate-crl'));
    assert.ok(stored, 'the podgate-crl Secret was written');
    const bundle = bundleFromSecret(stored);
    assert.ok(bundle);
    assert.deepEqual(
      bundle.revoked.map((c) => c.commonName),
      ['lap'],
    );
  });
});
