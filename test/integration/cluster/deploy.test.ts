/**
 * `ClusterService.deploy` / `status` / the CRL publisher against the real control plane (kube-apiserver
 * v1.34 with RBAC and admission, controllers, scheduler; pods reported Running by the kubelet simulator).
 * Each test deploys into a namespace of its own with its own NodePort (the shared cluster allocates
 * NodePorts cluster-wide).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterService } from '../../../src/cluster/index.js';
import { ConfigMapAgentReporter } from '../../../src/cluster/agent-status.js';
import { SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { bundleFromSecret } from '../../../src/cluster/secret-watch-source.js';
import type { KubeApi, KubeObject } from '../../../src/cluster/kube-api.js';
import type { AppContext } from '../../../src/services/context.js';
import { testContext } from '../../helpers/context.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminKubeApi,
  adminRest,
  dropNamespace,
  ensureKubeDns,
  realCluster,
  uniqueName,
} from '../../helpers/real-cluster.js';

let nextNodePort = 30100;

describe('k8s deploy against the real API server', function () {
  this.timeout(90_000);
  let cp: ControlPlane;
  let dir: string;
  let ctx: AppContext;
  let ns: string;
  let kube: KubeApi;
  let cluster: ClusterService;

  const service = (api: KubeApi = kube, rolloutTimeoutMs = 30_000) =>
    new ClusterService({
      config: ctx.config,
      store: ctx.store,
      server: ctx.server,
      revocation: ctx.revocation,
      kube: () => api,
      rolloutTimeoutMs,
      pollMs: 100,
    });
  const get = (kind: string, name: string, apiVersion = 'v1') =>
    kube.get({ apiVersion, kind, name, namespace: ns }) as Promise<KubeObject>;

  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
    await ensureKubeDns(cp);
  });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-deploy-'));
    ns = uniqueName('deploy');
    ctx = await testContext(dir, {
      'vpn.routes.pods': [],
      'vpn.routes.services': [],
      'vpn.endpoints': [],
      'kubernetes.namespace': ns,
      'kubernetes.nodePort': nextNodePort++,
    });
    kube = adminKubeApi(cp);
    cluster = service();
  });
  afterEach(async () => {
    await ctx?.close();
    rmSync(dir, { recursive: true, force: true });
    if (cp) await dropNamespace(cp, ns);
  });

  it('first deploy creates every object (namespace included) with server-side apply and waits for the real rollout; the second changes nothing', async () => {
    const lines: string[] = [];
    const first = await cluster.deploy((l) => lines.push(l));
    assert.match(
      lines[0]!,
      /discovered pods 10\.244\.0\.0\/24, 10\.244\.1\.0\/24 .*services 10\.96\.0\.0\/16 .*DNS 10\.96\.0\.10, nodes 172\.18\.0\.2, 172\.18\.0\.3/,
    );
    assert.deepEqual(
      first.objects.map((o) => o.action),
      Array(12).fill('created'),
      lines.join('\n'),
    );
    assert.ok(lines.includes(`Deployment ${ns}/podgate-openvpn created`));
    assert.ok(
      lines.some((l) => /rollout: 1\/1 ready/.test(l)),
      lines.join('\n'),
    );
    assert.equal(first.rollout.ready, true);

    const dep = await get('Deployment', 'podgate-openvpn', 'apps/v1');
    const managers = (dep.metadata.managedFields as { manager: string; operation: string }[])
      .filter((m) => m.operation === 'Apply')
      .map((m) => m.manager);
    assert.deepEqual(managers, ['podgate'], 'applied with field manager podgate');
    const conf = ((await get('ConfigMap', 'podgate-openvpn')).data as Record<string, string>)['server.conf']!;
    assert.match(conf, /push "route 10.244.0.0 255.255.255.0"/);
    assert.match(conf, /push "dhcp-option DNS 10.96.0.10"/);

    const second: string[] = [];
    const again = await cluster.deploy((l) => second.push(l));
    assert.deepEqual(
      again.objects.map((o) => o.action),
      Array(12).fill('unchanged'),
      second.join('\n'),
    );
    assert.equal(again.rollout.changed, false);
    assert.ok(
      second.some((l) => /rollout unchanged, 1\/1 ready/.test(l)),
      second.join('\n'),
    );
  });

  it('a config change reconfigures the ConfigMap and rolls the Deployment (checksum annotation)', async () => {
    await cluster.deploy();
    (ctx.config.vpn.dns as { servers: string[] }).servers = ['10.96.0.53'];
    const r = await cluster.deploy();
    const byName = Object.fromEntries(r.objects.map((o) => [o.object, o.action]));
    assert.equal(byName[`ConfigMap ${ns}/podgate-openvpn`], 'configured');
    assert.equal(byName[`Deployment ${ns}/podgate-openvpn`], 'configured');
    assert.equal(byName[`Secret ${ns}/podgate-server`], 'unchanged');
    assert.equal(r.rollout.changed, true);
    assert.equal((await get('Deployment', 'podgate-openvpn', 'apps/v1')).metadata.generation, 2);
  });

  it("another manager's field is taken over with force instead of failing with 409", async () => {
    await cluster.deploy();
    const edited = await adminRest(
      cp,
      'PATCH',
      `/api/v1/namespaces/${ns}/configmaps/podgate-openvpn?fieldManager=kubectl-edit`,
      { data: { 'server.conf': 'edited by hand\n' } },
      'application/merge-patch+json',
    );
    assert.equal(edited.status, 200);
    const r = await cluster.deploy();
    assert.equal(r.objects.find((o) => o.object === `ConfigMap ${ns}/podgate-openvpn`)!.action, 'configured');
    const cm = await get('ConfigMap', 'podgate-openvpn');
    assert.match((cm.data as Record<string, string>)['server.conf']!, /^# OpenVPN server configuration/);
    const owners = (cm.metadata.managedFields as { manager: string; fieldsV1?: unknown }[])
      .filter((m) => JSON.stringify(m.fieldsV1 ?? {}).includes('server.conf'))
      .map((m) => m.manager);
    assert.deepEqual(owners, ['podgate']);
  });

  it("status reports the real pod, endpoints and the agent's last applied CRL number, and audits effective revocations", async () => {
    await cluster.deploy();
    const port = ctx.config.kubernetes.nodePort;
    const before = await cluster.status();
    assert.equal(before.deployment?.readyReplicas, 1);
    assert.equal(before.pods.length, 1);
    assert.equal(before.pods[0]!.phase, 'Running');
    assert.equal(before.service?.nodePort, port);
    assert.equal(before.agent.lastAppliedCrlNumber, undefined);
    // endpoints come from the real endpoint controller: the pod's IP in a node's podCIDR
    for (let i = 0; i < 50 && (await cluster.status()).endpoints.length === 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.match((await cluster.status()).endpoints.join(','), /^10\.244\.[01]\.\d+:\d+\/UDP$/);

    const reporter = new ConfigMapAgentReporter(kube, ns, 'podgate-openvpn-1abc');
    const revokedAt = new Date(Date.now() - 1500).toISOString();
    const crlNumber = (await ctx.revocation.bundle()).crlNumber;
    await reporter.applied({
      crlNumber,
      appliedAt: new Date(),
      revoked: [{ serial: 'AB01', commonName: 'alice.laptop', revokedAt }],
      killed: [],
    });
    const after = await cluster.status();
    assert.equal(after.agent.lastAppliedCrlNumber, crlNumber);
    assert.deepEqual(
      after.newlyEffective.map((e) => e.serial),
      ['AB01'],
    );
    const rows = await ctx.store.listAudit({ action: 'revocation.effective' });
    assert.equal(rows.length, 1);
    assert.equal((await cluster.status()).newlyEffective.length, 0, 'audited once');
    // The re-apply of the status ConfigMap by deploy keeps the agent's keys.
    await cluster.deploy();
    assert.equal((await cluster.status()).agent.lastAppliedCrlNumber, crlNumber);
  });

  it('the Secret publisher updates podgate-crl after a revocation', async () => {
    await cluster.deploy();
    const alice = await ctx.users.create({ actor: 'test', name: 'alice', role: 'user' });
    const issued = await ctx.devices.issue({ actor: 'test', owner: alice.name, commonName: 'alice.laptop' });
    const rvBefore = (await get('Secret', 'podgate-crl')).metadata.resourceVersion;
    const { crl } = await ctx.revocation.revoke({
      actor: 'test',
      serialOrName: issued.cert.serial,
      reason: 'keyCompromise',
    });
    await new SecretCrlPublisher(kube, ns).publish(await ctx.revocation.bundle());
    const secret = await get('Secret', 'podgate-crl');
    assert.notEqual(secret.metadata.resourceVersion, rvBefore);
    const bundle = bundleFromSecret(secret as never)!;
    assert.equal(bundle.crlNumber, crl.number);
    assert.deepEqual(
      bundle.revoked.map((r) => r.commonName),
      ['alice.laptop'],
    );
    assert.deepEqual(secret.metadata.labels, {
      'app.kubernetes.io/name': 'podgate',
      'app.kubernetes.io/component': 'openvpn',
      'app.kubernetes.io/managed-by': 'podgate',
    });
  });

  it('manifests before any discovery (and no configured routes) is a 400 saying what to do', async () => {
    await assert.rejects(cluster.manifests(), (err: Error & { status?: number }) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /run `podgate k8s discover` first, or set vpn.routes.pods/);
      return true;
    });
  });

  it('overlapping ranges stop manifests with an error naming both ranges', async () => {
    ctx.config.vpn.officeLans = ['10.244.1.128/25'];
    await cluster.discover();
    await assert.rejects(
      cluster.manifests(),
      /10\.244\.1\.0\/24.*10\.244\.1\.128\/25|10\.244\.1\.128\/25.*10\.244\.1\.0\/24/,
    );
  });
});
