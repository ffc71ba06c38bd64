import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterService } from '../../../src/cluster/index.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import { ConfigMapAgentReporter } from '../../../src/cluster/agent-status.js';
import { SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { bundleFromSecret } from '../../../src/cluster/secret-watch-source.js';
import type { AppContext } from '../../../src/services/context.js';
import { testContext } from '../../helpers/context.js';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';
import type { JsonObject } from '../../helpers/fake-kube-ssa.js';

const NS = 'middleware';

describe('k8s deploy against the fake API server', function () {
  this.timeout(60_000);
  let dir: string;
  let ctx: AppContext;
  let fake: FakeKubeApi;
  let cluster: ClusterService;

  const service = (timeoutMs = 5000, rolloutTimeoutMs = 5000) =>
    new ClusterService({
      config: ctx.config,
      store: ctx.store,
      server: ctx.server,
      revocation: ctx.revocation,
      kube: () => createKubeApi(fake.kubeConfig(), { timeoutMs }),
      rolloutTimeoutMs,
      pollMs: 20,
    });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-deploy-'));
    ctx = await testContext(dir, { 'vpn.routes.pods': [], 'vpn.routes.services': [], 'vpn.endpoints': [] });
    fake = await FakeKubeApi.start();
    for (const f of [
      'kubeadm-config-v1beta3-single-stack.json',
      'node-kubeadm-kind-single-stack-v1.21.json',
      'service-kube-dns-kubeadm.json',
      'servicecidr-kubernetes-networking-v1.json',
    ]) {
      fake.seedSample(f);
    }
    cluster = service();
  });
  afterEach(async () => {
    await fake?.close();
    ctx?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('first deploy creates every object with server-side apply and waits for the rollout; the second changes nothing', async () => {
    const lines: string[] = [];
    const first = await cluster.deploy((l) => lines.push(l));
    assert.match(
      lines[0]!,
      /discovered pods 10\.244\.0\.0\/16 \(kubeadm-config.*services 10\.96\.0\.0\/12.*DNS 10\.96\.0\.10, nodes 172\.18\.0\.2/,
    );
    assert.deepEqual(
      first.objects.map((o) => o.action),
      Array(10).fill('created'),
    );
    assert.ok(lines.includes('Deployment middleware/podgate-openvpn created'));
    assert.ok(
      lines.some((l) => /rollout: 1\/1 ready/.test(l)),
      lines.join('\n'),
    );
    assert.equal(first.rollout.ready, true);

    const applies = fake.requests.filter((r) => r.verb === 'apply');
    assert.equal(applies.length, 10);
    for (const r of applies) {
      assert.equal(r.contentType, 'application/apply-patch+yaml');
      assert.equal(r.query.fieldManager, 'podgate');
      assert.equal(r.query.force, 'true');
    }
    const dep = fake.getObject('apps/v1', 'Deployment', 'podgate-openvpn', NS)!;
    const managers = (dep.metadata as JsonObject).managedFields as unknown as {
      manager: string;
      operation: string;
    }[];
    assert.deepEqual(
      managers.map((m) => [m.manager, m.operation]),
      [['podgate', 'Apply']],
    );
    // The pushed routes come from discovery, the client's remotes from the node addresses.
    const conf = (fake.getObject('v1', 'ConfigMap', 'podgate-openvpn', NS)!.data as JsonObject)[
      'server.conf'
    ] as string;
    assert.match(conf, /push "route 10.244.0.0 255.255.0.0"/);
    assert.match(conf, /push "dhcp-option DNS 10.96.0.10"/);

    const rvs = [...fake.objects.entries()]
      .filter(([k]) => k.includes(`|${NS}|`))
      .map(([k, o]) => [k, (o.metadata as JsonObject).resourceVersion]);
    const second: string[] = [];
    const again = await cluster.deploy((l) => second.push(l));
    assert.deepEqual(
      again.objects.map((o) => o.action),
      Array(10).fill('unchanged'),
      second.join('\n'),
    );
    assert.equal(again.rollout.changed, false);
    assert.ok(
      second.some((l) => /rollout unchanged, 1\/1 ready/.test(l)),
      second.join('\n'),
    );
    const rvsAfter = [...fake.objects.entries()]
      .filter(([k]) => k.includes(`|${NS}|`))
      .map(([k, o]) => [k, (o.metadata as JsonObject).resourceVersion]);
    assert.deepEqual(rvsAfter, rvs, 'nothing stored again');
  });

  it('a config change reconfigures the ConfigMap and rolls the Deployment (checksum annotation)', async () => {
    await cluster.deploy();
    (ctx.config.vpn.dns as { servers: string[] }).servers = ['10.96.0.53'];
    const r = await cluster.deploy();
    const byName = Object.fromEntries(r.objects.map((o) => [o.object, o.action]));
    assert.equal(byName['ConfigMap middleware/podgate-openvpn'], 'configured');
    assert.equal(byName['Deployment middleware/podgate-openvpn'], 'configured');
    assert.equal(byName['Secret middleware/podgate-server'], 'unchanged');
    assert.equal(r.rollout.changed, true);
    const dep = fake.getObject('apps/v1', 'Deployment', 'podgate-openvpn', NS)!;
    assert.equal((dep.metadata as JsonObject).generation, 2);
  });

  for (const failure of [403, 504, 'hang'] as const) {
    it(`${failure} mid-deploy: the error names the object, and a retry completes`, async () => {
      fake.inject({ verb: 'apply', kind: 'Secret', name: 'podgate-crl', status: failure });
      cluster = service(failure === 'hang' ? 400 : 5000);
      await assert.rejects(cluster.deploy(), (err: Error) => {
        assert.match(err.message, /deploy stopped at Secret middleware\/podgate-crl \(6\/10\)/);
        if (failure === 403)
          assert.match(
            err.message,
            /403 Forbidden: secrets "podgate-crl" is forbidden: User "system:serviceaccount:middleware:podgate" cannot patch resource "secrets"/,
          );
        if (failure === 504) assert.match(err.message, /504 Timeout/);
        if (failure === 'hang') assert.match(err.message, /Timeout: no answer within 400 ms/);
        assert.match(err.message, /the 5 object\(s\) before it were applied, run deploy again to continue/);
        return true;
      });
      assert.equal(
        fake.getObject('apps/v1', 'Deployment', 'podgate-openvpn', NS),
        undefined,
        'stopped before the workload',
      );
      const retry = await cluster.deploy();
      assert.deepEqual(
        retry.objects.map((o) => o.action),
        [...Array(5).fill('unchanged'), ...Array(5).fill('created')],
      );
      assert.equal(retry.rollout.ready, true);
    });
  }

  it("another manager's field is taken over with force instead of failing with 409", async () => {
    await cluster.deploy();
    fake.seed({
      ...fake.getObject('v1', 'ConfigMap', 'podgate-openvpn', NS)!,
      metadata: {
        ...(fake.getObject('v1', 'ConfigMap', 'podgate-openvpn', NS)!.metadata as JsonObject),
        managedFields: [
          {
            manager: 'podgate',
            operation: 'Apply',
            apiVersion: 'v1',
            time: '2025-01-01T00:00:00Z',
            fieldsType: 'FieldsV1',
            fieldsV1: { 'f:metadata': { 'f:labels': {} } },
          },
          {
            manager: 'kubectl-edit',
            operation: 'Update',
            apiVersion: 'v1',
            time: '2025-01-01T00:00:00Z',
            fieldsType: 'FieldsV1',
            fieldsV1: { 'f:data': { 'f:server.conf': {} } },
          },
        ],
      },
      data: { 'server.conf': 'edited by hand\n' },
    } as JsonObject);
    const r = await cluster.deploy();
    assert.equal(
      r.objects.find((o) => o.object === 'ConfigMap middleware/podgate-openvpn')!.action,
      'configured',
    );
    const cm = fake.getObject('v1', 'ConfigMap', 'podgate-openvpn', NS)!;
    assert.match(String((cm.data as JsonObject)['server.conf']), /^# OpenVPN server configuration/);
    const managers = ((cm.metadata as JsonObject).managedFields as unknown as { manager: string }[]).map(
      (m) => m.manager,
    );
    assert.deepEqual(managers, ['podgate']);
  });

  it("status reports pods, endpoints and the agent's last applied CRL number, and audits effective revocations", async () => {
    await cluster.deploy();
    const kube = createKubeApi(fake.kubeConfig());
    const before = await cluster.status();
    assert.equal(before.deployment?.readyReplicas, 1);
    assert.equal(before.pods.length, 1);
    assert.equal(before.pods[0]!.phase, 'Running');
    assert.deepEqual(before.endpoints, ['10.244.1.5:30030/UDP']);
    assert.equal(before.service?.nodePort, 30030);
    assert.equal(before.agent.lastAppliedCrlNumber, undefined);

    const reporter = new ConfigMapAgentReporter(kube, NS, 'podgate-openvpn-1abc');
    const revokedAt = new Date(Date.now() - 1500).toISOString();
    const crlNumber = ctx.revocation.bundle().crlNumber;
    await reporter.applied({
      crlNumber,
      appliedAt: new Date(),
      revoked: [{ serial: 'AB01', commonName: 'alice.laptop', revokedAt }],
      killed: [],
    });
    const after = await cluster.status();
    assert.equal(after.agent.lastAppliedCrlNumber, crlNumber);
    assert.equal(after.agent.pod, 'podgate-openvpn-1abc');
    assert.deepEqual(
      after.newlyEffective.map((e) => e.serial),
      ['AB01'],
    );
    const rows = ctx.store.listAudit({ action: 'revocation.effective' });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.target, 'alice.laptop');
    assert.ok(Number((rows[0]!.details as { latencyMs: number }).latencyMs) >= 1500);
    assert.equal((await cluster.status()).newlyEffective.length, 0, 'audited once');
    // The re-apply of the status ConfigMap by deploy keeps the agent's keys.
    await cluster.deploy();
    assert.equal((await cluster.status()).agent.lastAppliedCrlNumber, crlNumber);
  });

  it('the Secret publisher updates podgate-crl after a revocation', async () => {
    await cluster.deploy();
    const kube = createKubeApi(fake.kubeConfig());
    const alice = await ctx.users.create({ actor: 'test', name: 'alice', role: 'user' });
    const issued = await ctx.devices.issue({ actor: 'test', owner: alice.name, commonName: 'alice.laptop' });
    const rvBefore = (fake.getObject('v1', 'Secret', 'podgate-crl', NS)!.metadata as JsonObject)
      .resourceVersion;
    const { crl } = await ctx.revocation.revoke({
      actor: 'test',
      serialOrName: issued.cert.serial,
      reason: 'keyCompromise',
    });
    await new SecretCrlPublisher(kube, NS).publish(ctx.revocation.bundle());
    const secret = fake.getObject('v1', 'Secret', 'podgate-crl', NS)!;
    assert.notEqual((secret.metadata as JsonObject).resourceVersion, rvBefore);
    const bundle = bundleFromSecret(secret as never)!;
    assert.equal(bundle.crlNumber, crl.number);
    assert.deepEqual(
      bundle.revoked.map((r) => r.commonName),
      ['alice.laptop'],
    );
    assert.deepEqual((secret.metadata as JsonObject).labels, {
      'app.kubernetes.io/name': 'podgate',
      'app.kubernetes.io/component': 'openvpn',
      'app.kubernetes.io/managed-by': 'podgate',
    });
  });

  it('a rollout that never becomes ready fails naming the Deployment; objects stay applied', async () => {
    fake.options.rolloutDelayMs = null;
    cluster = service(5000, 300);
    const lines: string[] = [];
    await assert.rejects(
      cluster.deploy((l) => lines.push(l)),
      /Deployment middleware\/podgate-openvpn not ready after 0 s \(0\/1 ready\); check `podgate k8s status`/,
    );
    assert.ok(lines.includes('Deployment middleware/podgate-openvpn created'));
    fake.options.rolloutDelayMs = 10;
    (ctx.config.vpn.dns as { servers: string[] }).servers = ['10.96.0.53']; // a change, so the fake rolls out again
    assert.equal((await service().deploy()).rollout.ready, true);
  });

  it('manifests before any discovery (and no configured routes) is a 400 saying what to do', async () => {
    await assert.rejects(cluster.manifests(), (err: Error & { status?: number }) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /run `podgate k8s discover` first, or set vpn.routes.pods/);
      return true;
    });
  });

  it('overlapping ranges stop manifests with an error naming both ranges', async () => {
    ctx.config.vpn.officeLans = ['10.244.8.0/24'];
    await cluster.discover();
    await assert.rejects(
      cluster.manifests(),
      /vpn.officeLans 10\.244\.8\.0\/24|10\.244\.0\.0\/16 overlaps vpn.officeLans 10\.244\.8\.0\/24/,
    );
  });
});
