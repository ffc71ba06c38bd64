/**
 * charts/podgate with the real helm (v4, built from its Go module with the test cluster; a missing helm
 * fails the test): `helm lint`, `helm template` with the default values (the same objects as
 * `kubectl kustomize k8s/`, so the two cannot drift) and with a file that sets every value, bad values
 * refused by values.schema.json naming the field, and `helm install` on the real control plane followed
 * by `podgate k8s deploy` as the chart's ServiceAccount.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Service } from 'kubernetes-models/v1/Service';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { loadConfig } from '../../../src/config/load.js';
import { managerRbac } from '../../../src/cluster/manager-rbac.js';
import { requireBinaries } from '../../cluster/binaries.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { runCli } from '../../helpers/cli.js';
import {
  adminRest,
  canI,
  dropNamespace,
  ensureKubeDns,
  kubectl,
  realCluster,
  serviceAccountKubeconfig,
  tempDir,
  uniqueName,
} from '../../helpers/real-cluster.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CHART = join(ROOT, 'charts', 'podgate');
const K8S_DIR = join(ROOT, 'k8s');
const FULL_VALUES = join(ROOT, 'test', 'fixtures', 'helm', 'full-values.yaml');

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered manifests: any object shape */
type Obj = {
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: any };
  [k: string]: any;
};
/* eslint-enable @typescript-eslint/no-explicit-any */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  Namespace,
  ServiceAccount,
  Service,
  ConfigMap,
  PersistentVolumeClaim,
  Deployment,
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
};

let home: ReturnType<typeof tempDir>;

/** helm with its cache, config and data dirs in a temp dir of the test (nothing written to ~). */
async function helm(
  args: string[],
  kubeconfig?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { helm: bin } = requireBinaries(['helm']);
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home.dir,
    HELM_CACHE_HOME: join(home.dir, 'cache'),
    HELM_CONFIG_HOME: join(home.dir, 'config'),
    HELM_DATA_HOME: join(home.dir, 'data'),
    ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
  };
  return promisify(execFile)(bin, args, { env, encoding: 'utf8', maxBuffer: 32 * 1024 * 1024 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    }),
  );
}

/** YAML 1.1 as Kubernetes reads it (`defaultMode: 0440` is octal there). */
function parse(stdout: string): Obj[] {
  return parseAllDocuments(stdout, { version: '1.1' })
    .map((d) => d.toJSON() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

async function template(args: string[] = []): Promise<Obj[]> {
  const r = await helm(['template', 'podgate', CHART, '--namespace', 'podgate', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return parse(r.stdout);
}

const key = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const sorted = (objs: Obj[]) => [...objs].sort((a, b) => key(a).localeCompare(key(b)));

/** What Helm adds by itself: its own labels and annotations (the chart's content stays). */
function withoutHelmMarks(o: Obj): Obj {
  const c = structuredClone(o);
  const labels = c.metadata.labels as Record<string, string> | undefined;
  if (labels) {
    delete labels['helm.sh/chart'];
    delete labels['app.kubernetes.io/instance'];
    if (labels['app.kubernetes.io/managed-by'] === 'Helm') delete labels['app.kubernetes.io/managed-by'];
  }
  const ann = c.metadata.annotations as Record<string, string> | undefined;
  if (ann) {
    for (const k of Object.keys(ann)) if (k.startsWith('helm.sh/')) delete ann[k];
    if (Object.keys(ann).length === 0) delete c.metadata.annotations;
  }
  return c;
}

const find = (objs: Obj[], kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name}`);
  return o;
};

describe('Helm chart charts/podgate with the real helm', function () {
  this.timeout(120_000);
  before(() => {
    home = tempDir('podgate-helm-');
  });
  after(() => home.remove());

  it('helm lint --strict passes with the default values and with the full values file', async () => {
    const def = await helm(['lint', '--strict', CHART]);
    assert.equal(def.code, 0, def.stdout + def.stderr);
    assert.match(def.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    const full = await helm(['lint', '--strict', CHART, '--values', FULL_VALUES]);
    assert.equal(full.code, 0, full.stdout + full.stderr);
  });

  it('default values render the objects of `kubectl kustomize k8s/` (less the release namespace), each valid', async () => {
    const chart = await template();
    for (const o of chart) {
      const Model = MODELS[o.kind];
      assert.ok(Model, `model for ${o.kind}`);
      assert.doesNotThrow(() => new Model(structuredClone(o)).validate(), key(o));
    }
    const { kubectl: kubectlBin } = requireBinaries(['kubectl']);
    const { stdout } = await promisify(execFile)(kubectlBin, ['kustomize', K8S_DIR], { encoding: 'utf8' });
    // Helm's convention: the release namespace comes from `--create-namespace`, not from the chart
    const base = parse(stdout).filter((o) => !(o.kind === 'Namespace' && o.metadata.name === 'podgate'));
    assert.ok(base.length >= 14, `${base.length} objects in the kustomize base`);
    assert.deepEqual(sorted(chart.map(withoutHelmMarks)).map(key), sorted(base).map(key));
    assert.deepEqual(sorted(chart.map(withoutHelmMarks)), sorted(base));
  });

  it('accessView.enabled adds exactly the objects of the opt-in k8s/rbac-access-view.yaml', async () => {
    const off = await template();
    assert.equal(
      off.filter((o) => o.metadata.name === 'podgate-manager-access-view').length,
      0,
      'off by default, as the kustomize base leaves the file out',
    );
    const on = await template(['--set', 'accessView.enabled=true']);
    const byKey = new Set(off.map(key));
    const added = on.filter((o) => !byKey.has(key(o))).map(withoutHelmMarks);
    const file = parse(readFileSync(join(K8S_DIR, 'rbac-access-view.yaml'), 'utf8'));
    assert.equal(file.length, 2, 'a ClusterRole and its binding in k8s/rbac-access-view.yaml');
    assert.deepEqual(sorted(added), sorted(file));
    for (const o of added)
      assert.doesNotThrow(() => new MODELS[o.kind]!(structuredClone(o)).validate(), key(o));
    // in another release namespace the binding names the release's ServiceAccount
    const ops = await template(['--set', 'accessView.enabled=true', '--namespace', 'ops']);
    assert.deepEqual(find(ops, 'ClusterRoleBinding', 'podgate-manager-access-view').subjects, [
      { kind: 'ServiceAccount', name: 'podgate-manager', namespace: 'ops' },
    ]);
  });

  it('the RBAC for another server namespace is what `podgate k8s rbac --namespace NS --service-account` prints', async () => {
    const chart = await template(['--set', 'serverNamespace.name=vpn-east', '--namespace', 'ops']);
    const names = new Set(
      managerRbac('vpn-east', { namespace: 'ops', name: 'podgate-manager' }).map(
        (o) => `${o.kind}/${o.metadata.name}`,
      ),
    );
    const fromChart = chart
      .filter((o) => names.has(`${o.kind}/${o.metadata.name}`))
      .map(withoutHelmMarks)
      .map((o) => {
        // the labels kustomize (k8s/) and the chart add to every object
        delete o.metadata.labels?.['app.kubernetes.io/part-of'];
        return o;
      });
    const want = managerRbac('vpn-east', { namespace: 'ops', name: 'podgate-manager' })
      .filter((o) => o.kind !== 'Namespace')
      .map((o) => structuredClone(o) as unknown as Obj);
    assert.ok(want.length >= 5);
    assert.deepEqual(sorted(fromChart.filter((o) => o.kind !== 'Namespace')), sorted(want));
  });

  it('the full values file sets every value where it belongs', async () => {
    const objs = await template(['--values', FULL_VALUES]);
    const d = find(objs, 'Deployment', 'podgate-manager');
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    assert.equal(c.image, 'registry.example.test/ops/podgate:0.1.0');
    assert.equal(c.imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'regcred' }]);
    const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    assert.equal(env.PODGATE_KUBERNETES_NAMESPACE, 'vpn');
    assert.equal(env.PODGATE_LOG_LEVEL, 'debug');
    assert.equal(env.PODGATE_CONFIG, '/etc/podgate/config/podgate.yaml');
    assert.deepEqual(c.resources.limits, { cpu: '1', memory: '1Gi' });
    assert.equal(
      pod.volumes.find((v: { name: string }) => v.name === 'admin-password').secret.secretName,
      'first-admin',
    );
    assert.equal(
      pod.volumes.find((v: { name: string }) => v.name === 'config').configMap.name,
      'podgate-config',
    );
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.equal(pod.tolerations[0].value, 'vpn');
    assert.ok(pod.affinity.nodeAffinity);
    assert.equal(d.spec.template.metadata.annotations['example.test/team'], 'platform');
    assert.match(d.spec.template.metadata.annotations['podgate.io/config-checksum'], /^[0-9a-f]{64}$/);
    assert.equal(find(objs, 'PersistentVolumeClaim', 'podgate-data').spec.storageClassName, 'fast-ssd');
    assert.equal(find(objs, 'PersistentVolumeClaim', 'podgate-data').spec.resources.requests.storage, '5Gi');
    const svc = find(objs, 'Service', 'podgate-manager');
    assert.equal(svc.spec.type, 'NodePort');
    assert.equal(svc.spec.ports[0].port, 8080);
    // the metrics listener: on every address of the pod, a port of the container and the Service
    assert.deepEqual(svc.spec.ports[1], {
      name: 'metrics',
      port: 9464,
      targetPort: 'metrics',
      protocol: 'TCP',
    });
    assert.deepEqual(
      c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
      [
        ['http', 8080],
        ['metrics', 9464],
      ],
    );
    assert.equal(
      find(objs, 'Namespace', 'vpn').metadata.labels['pod-security.kubernetes.io/enforce'],
      'privileged',
    );
    find(objs, 'Role', 'podgate-manager');
    find(objs, 'ClusterRole', 'podgate-manager-namespace-vpn');
    find(objs, 'ClusterRole', 'podgate-manager-access-view');
    // the ConfigMap is a podgate.yaml that podgate itself accepts
    const file = join(home.dir, 'podgate.yaml');
    writeFileSync(file, find(objs, 'ConfigMap', 'podgate-config').data['podgate.yaml']);
    // as the container sees it: the file plus the chart's environment
    const podEnv = Object.fromEntries(
      c.env.filter((e: { value?: string }) => e.value !== undefined).map((e: { name: string; value: string }) => [e.name, e.value]),
    ); // prettier-ignore
    const config = loadConfig({ file, env: podEnv });
    assert.deepEqual(config.vpn.endpoints, ['vpn.example.test']);
    assert.equal(config.web.trustProxy, true);
    assert.equal(config.web.metricsPort, 9464);
    assert.equal(config.web.metricsHost, '0.0.0.0');
    assert.equal(config.kubernetes.namespace, 'vpn');
    for (const o of objs)
      assert.doesNotThrow(() => new MODELS[o.kind]!(structuredClone(o)).validate(), key(o));
  });

  it('optional parts: an existing claim, no server namespace, no PodSecurity label', async () => {
    const objs = await template([
      '--set',
      'persistence.existingClaim=old-data',
      '--set',
      'serverNamespace.create=false',
    ]);
    assert.equal(objs.filter((o) => o.kind === 'PersistentVolumeClaim').length, 0);
    const d = find(objs, 'Deployment', 'podgate-manager');
    assert.equal(
      d.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'data').persistentVolumeClaim
        .claimName,
      'old-data',
    );
    assert.equal(objs.filter((o) => o.kind === 'Namespace').length, 0);
    const unlabelled = await template(['--set', 'serverNamespace.podSecurityLabel=false']);
    assert.equal(
      find(unlabelled, 'Namespace', 'middleware').metadata.labels['pod-security.kubernetes.io/enforce'],
      undefined,
    );
  });

  const refused: [string, string[], RegExp][] = [
    ['a service port out of range', ['--set', 'service.port=70000'], /service\/port/],
    ['a namespace name that is no DNS label', ['--set', 'serverNamespace.name=Bad_NS'], /serverNamespace\/name/],
    ['an unknown key (a typo)', ['--set', 'persistance.size=2Gi'], /persistance/],
    ['an image tag with a space', ['--set-string', 'image.tag=1.0 beta'], /image\/tag/],
    ['a size that is no quantity', ['--set', 'persistence.size=lots'], /persistence\/size/],
    ['a pull policy Kubernetes does not know', ['--set', 'image.pullPolicy=Sometimes'], /image\/pullPolicy/],
    ['a config key the chart sets itself', ['--set', 'config.dataDir=/elsewhere'], /config\/dataDir/],
    ['an env variable the chart sets itself', ['--set', 'extraEnv[0].name=PODGATE_DATA_DIR', '--set', 'extraEnv[0].value=/x'], /extraEnv\/0\/name/],
    ['a metrics port that is the web app\'s', ['--set', 'metrics.enabled=true', '--set', 'metrics.port=8080'], /metrics\/port/],
    ['a boolean given as a word', ['--set-string', 'serverNamespace.create=yes'], /serverNamespace\/create/],
    ['accessView given as a word', ['--set-string', 'accessView.enabled=yes'], /accessView\/enabled/],
  ]; // prettier-ignore
  for (const [what, args, field] of refused) {
    it(`the schema refuses ${what}, naming the field; nothing is rendered`, async () => {
      const r = await helm(['template', 'podgate', CHART, '--namespace', 'podgate', ...args]);
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, /values don't meet the specifications of the schema/, r.stderr);
      assert.match(r.stderr, field, r.stderr);
      assert.equal(r.stdout, '');
    });
  }

  it('a bad values file is refused by `helm install` too, before anything reaches the API server', async () => {
    const bad = join(home.dir, 'bad.yaml');
    writeFileSync(bad, 'service:\n  type: ExternalName\n  port: 80\n');
    const r = await helm([
      'install',
      'podgate',
      CHART,
      '--namespace',
      'podgate',
      '--dry-run=client',
      '--values',
      bad,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /service\/type/, r.stderr);
  });
});

describe('helm install of charts/podgate on the real control plane', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let tmp: ReturnType<typeof tempDir>;
  let kubeconfig: string;
  const releaseNs = uniqueName('helm-podgate');
  const serverNs = uniqueName('helm-vpn');

  before(async function () {
    this.timeout(240_000);
    cp = await realCluster();
    await ensureKubeDns(cp);
    tmp = tempDir('podgate-helm-install-');
    home = tempDir('podgate-helm-');
    kubeconfig = cp.kubeconfig;
    // an earlier `kubectl apply -k k8s/` holds the cluster-wide objects (as the other cluster suites leave it)
    await kubectl(cp, ['apply', '-k', K8S_DIR]);
  });
  after(async function () {
    this.timeout(120_000);
    await helm(['uninstall', 'podgate', '--namespace', releaseNs, '--wait'], kubeconfig);
    for (const ns of [releaseNs, serverNs]) await dropNamespace(cp, ns);
    // leave the shared cluster as the admin's kustomize install left it (the chart took its cluster-wide
    // objects over, and uninstall removed them)
    await kubectl(cp, ['apply', '-k', K8S_DIR]);
    tmp?.remove();
    home?.remove();
  });

  it("installs on the real API server; the chart's ServiceAccount then deploys the OpenVPN server", async () => {
    // Moving from the k8s/ base, which holds the cluster-wide objects: --take-ownership adopts them, and
    // --force-conflicts lets the release's server-side apply take the fields kubectl's apply set (Helm
    // marks every object managed-by Helm; the bindings get the release's ServiceAccount). Without it the
    // install stops at the conflicts (checked below).
    const plain = await helm(
      ['install', 'podgate', CHART, '--namespace', releaseNs, '--create-namespace', '--take-ownership', '--set', `serverNamespace.name=${serverNs}`],
      kubeconfig,
    ); // prettier-ignore
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /conflict with "kubectl-client-side-apply"/, plain.stderr);
    await helm(['uninstall', 'podgate', '--namespace', releaseNs, '--wait'], kubeconfig);
    const r = await helm(
      [
        'install',
        'podgate',
        CHART,
        '--namespace',
        releaseNs,
        '--create-namespace',
        '--take-ownership',
        '--force-conflicts',
        '--set',
        `serverNamespace.name=${serverNs}`,
      ],
      kubeconfig,
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /STATUS: deployed/);
    // the base's ClusterRoleBinding now belongs to the release and binds the release's ServiceAccount
    const crb = await adminRest<{
      metadata: { annotations: Record<string, string> };
      subjects: { namespace: string }[];
    }>(cp, 'GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/podgate-manager-discovery');
    assert.equal(crb.body.metadata.annotations['meta.helm.sh/release-namespace'], releaseNs);
    assert.deepEqual(
      crb.body.subjects.map((s) => s.namespace),
      [releaseNs],
    );
    const list = await helm(['list', '--namespace', releaseNs, '--output', 'json'], kubeconfig);
    assert.equal((JSON.parse(list.stdout) as { status: string }[])[0]?.status, 'deployed');

    const dep = await adminRest<{ spec: { template: { spec: { serviceAccountName: string } } } }>(
      cp,
      'GET',
      `/apis/apps/v1/namespaces/${releaseNs}/deployments/podgate-manager`,
    );
    assert.equal(dep.status, 200);
    assert.equal(dep.body.spec.template.spec.serviceAccountName, 'podgate-manager');
    const ns = await adminRest<{ metadata: { labels: Record<string, string> } }>(
      cp,
      'GET',
      `/api/v1/namespaces/${serverNs}`,
    );
    assert.equal(ns.body.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged');
    assert.equal(
      (await adminRest(cp, 'GET', `/api/v1/namespaces/${releaseNs}/persistentvolumeclaims/podgate-data`))
        .status,
      200,
    );

    const manager = `system:serviceaccount:${releaseNs}:podgate-manager`;
    for (const a of [
      ['patch', `deployments.apps/podgate-openvpn`, '-n', serverNs],
      ['list', 'nodes'],
      ['get', 'services/kube-dns', '-n', 'kube-system'],
      ['bind', 'clusterroles.rbac.authorization.k8s.io/podgate-agent-access'],
    ]) {
      assert.equal(await canI(cp, manager, a), 'yes', a.join(' '));
    }
    for (const a of [
      ['list', 'secrets', '-n', serverNs],
      ['create', 'deployments.apps', '-n', 'kube-system'],
      ['patch', 'clusterroles.rbac.authorization.k8s.io/podgate-agent-access'],
    ]) {
      assert.equal(await canI(cp, manager, a), 'no', a.join(' '));
    }

    // the manager's own identity from the chart deploys the server into the chart's server namespace
    const managerKubeconfig = await serviceAccountKubeconfig(
      cp,
      releaseNs,
      'podgate-manager',
      join(tmp.dir, 'm.kubeconfig'),
    );
    const config = join(tmp.dir, 'podgate.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        vpn: { endpoints: [], routes: { pods: [], services: [] } },
        kubernetes: {
          kubeconfig: managerKubeconfig,
          namespace: serverNs,
          nodePort: 31790,
          nodePortRange: '30000-31999',
        },
      }),
    );
    const deploy = await runCli(['--config', config, '--data-dir', join(tmp.dir, 'data'), 'k8s', 'deploy']);
    assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
    assert.match(deploy.stdout, /Deployment .*podgate-openvpn created/, deploy.stdout);
    const server = await adminRest(
      cp,
      'GET',
      `/apis/apps/v1/namespaces/${serverNs}/deployments/podgate-openvpn`,
    );
    assert.equal(server.status, 200);
  });
});
