/**
 * Cluster discovery from real objects on the real control plane (kube-apiserver v1.34): kubeadm-config,
 * the flannel ConfigMap (kube-flannel and kube-system), Calico IPPools through Calico's CRD
 * (test/fixtures/calico/ippools-crd.yaml), cilium-config, ServiceCIDRs (the API server's own `kubernetes`
 * one plus extra ones, one of them terminating), node podCIDRs and InternalIPs, a k3s server node,
 * `kube-dns`, the dry-run probe's real error text, and the real 403 and 401.
 *
 * The cluster is shared by the whole mocha run: the objects a case creates in kube-system, kube-flannel
 * or at cluster scope are removed after it, and waited for, before the next case starts (mocha runs the
 * cases of a file one after another). The object payloads are the samples of test/fixtures/k8s-samples.
 *
 * What a v1.34 server cannot show (another release's probe error text, no ServiceCIDR API, a 503 from an
 * aggregated API, a webhook refusing dry-run) stays in test/unit/cluster/discovery.test.ts on the fake.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../../src/config/load.js';
import { discover, probeServiceRange, PROBE_SERVICE, lastDiscovery } from '../../../src/cluster/discovery.js';
import { KubeApiError, type KubeApi } from '../../../src/cluster/kube-api.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import { logger, setLogLevel } from '../../../src/lib/logger.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { sample } from '../../helpers/k8s-samples.js';
import {
  adminKubeApi,
  adminRest,
  dropNamespace,
  ensureKubeDns,
  freshNamespace,
  kubectl,
  realCluster,
  serviceAccountToken,
  tokenKubeConfig,
  uniqueName,
} from '../../helpers/real-cluster.js';

type JsonObject = Record<string, unknown>;

const CALICO_CRD = fileURLToPath(
  new URL('../../../../test/fixtures/calico/ippools-crd.yaml', import.meta.url),
);
const config = (over: Record<string, unknown> = {}) => loadConfig({ env: {}, overrides: over });

/** Collection paths of the kinds these cases create. */
function collection(obj: JsonObject): string {
  const ns = (obj.metadata as JsonObject).namespace as string | undefined;
  switch (`${String(obj.apiVersion)}/${String(obj.kind)}`) {
    case 'v1/ConfigMap':
      return `/api/v1/namespaces/${ns}/configmaps`;
    case 'v1/Service':
      return `/api/v1/namespaces/${ns}/services`;
    case 'v1/Node':
      return '/api/v1/nodes';
    case 'v1/Namespace':
      return '/api/v1/namespaces';
    case 'networking.k8s.io/v1/ServiceCIDR':
      return '/apis/networking.k8s.io/v1/servicecidrs';
    case 'crd.projectcalico.org/v1/IPPool':
      return '/apis/crd.projectcalico.org/v1/ippools';
    default:
      throw new Error(`no path for ${String(obj.apiVersion)} ${String(obj.kind)}`);
  }
}

/** A sample as a new object: server-set metadata dropped, `edit` applied. */
function fromSample(file: string, edit: (o: JsonObject) => void = () => undefined): JsonObject {
  const o = sample(file);
  const m = o.metadata as JsonObject;
  for (const k of ['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields']) delete m[k];
  edit(o);
  return o;
}

async function waitGone(cp: ControlPlane, path: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await adminRest(cp, 'GET', path)).status === 404) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${path} still there after 60 s`);
}

describe('cluster discovery from real objects on the real API server', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let kube: KubeApi;
  /** Object paths to delete after the case, newest first. */
  let created: string[] = [];

  const create = async (obj: JsonObject): Promise<void> => {
    const res = await adminRest(cp, 'POST', collection(obj), obj);
    assert.equal(res.status, 201, `create ${String(obj.kind)}: ${JSON.stringify(res.body)}`);
    created.unshift(`${collection(obj)}/${String((obj.metadata as JsonObject).name)}`);
  };
  const run = async (over: Record<string, unknown> = {}, api: KubeApi = kube) => {
    const settings = new Map<string, string>();
    const store = {
      getSetting: async (k: string) => settings.get(k),
      setSetting: async (k: string, v: string) => void settings.set(k, v),
    };
    return await discover(config(over), { kube: api, settings: store }).then(async (r) => {
      // Stored for the profile renderer, with the field names services/network.ts reads.
      assert.deepEqual((await lastDiscovery(store))?.podCidrs, r.podCidrs);
      return r;
    });
  };
  const hasWarning = (warnings: string[], re: RegExp) =>
    assert.ok(
      warnings.some((w) => re.test(w)),
      `${re} in ${JSON.stringify(warnings, null, 1)}`,
    );
  const disagreements = (warnings: string[]) => warnings.filter((w) => /disagree/.test(w));

  const level = logger.level;
  before(async function () {
    this.timeout(180_000);
    setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent'); // discovery logs every warning it returns
    cp = await realCluster();
    await ensureKubeDns(cp);
  });
  after(() => setLogLevel(level));
  beforeEach(() => {
    kube = adminKubeApi(cp);
    created = [];
  });
  afterEach(async () => {
    for (const path of created) await adminRest(cp, 'DELETE', path);
    for (const path of created) await waitGone(cp, path);
  });

  it("a bare cluster: pods from the nodes' podCIDRs, services from the API server's own ServiceCIDR, DNS from kube-dns", async () => {
    const r = await run();
    assert.deepEqual(r.podCidrs, ['10.244.0.0/24', '10.244.1.0/24']);
    assert.match(r.podCidrSource, /node.spec.podCIDRs/);
    assert.deepEqual(r.serviceCidrs, ['10.96.0.0/16']);
    assert.equal(r.serviceCidrSource, 'ServiceCIDR objects (networking.k8s.io/v1)');
    assert.equal(r.dnsServer, '10.96.0.10');
    assert.equal(r.clusterDomain, 'cluster.local');
    assert.deepEqual(r.nodeIps, ['172.18.0.2', '172.18.0.3']);
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.overlaps, []);
  });

  it('kubeadm-config: pods from podSubnet, DNS domain from dnsDomain; the nodes slices fit inside', async () => {
    await create(
      fromSample('kubeadm-config-v1beta3-single-stack.json', (o) => {
        const data = o.data as JsonObject;
        data.ClusterConfiguration = String(data.ClusterConfiguration)
          .replace('serviceSubnet: 10.96.0.0/12', 'serviceSubnet: 10.96.0.0/16')
          .replace('dnsDomain: cluster.local', 'dnsDomain: office.internal');
      }),
    );
    const r = await run();
    assert.deepEqual(r.podCidrs, ['10.244.0.0/16']);
    assert.equal(r.podCidrSource, 'kubeadm-config networking.podSubnet');
    assert.deepEqual(r.serviceCidrs, ['10.96.0.0/16']);
    assert.equal(r.clusterDomain, 'office.internal');
    assert.equal(r.clusterDomainSource, 'kubeadm-config networking.dnsDomain');
    assert.deepEqual(disagreements(r.warnings), []);
  });

  it('kubeadm-config serviceSubnet disagrees with the real ServiceCIDR: warning names both', async () => {
    await create(fromSample('kubeadm-config-v1beta4-single-stack.json'));
    const r = await run();
    assert.deepEqual(r.serviceCidrs, ['10.96.0.0/16']);
    hasWarning(
      r.warnings,
      /service CIDR sources disagree: 10\.255\.0\.0\/16 from kubeadm-config networking.serviceSubnet is not inside 10\.96\.0\.0\/16 from ServiceCIDR objects/,
    );
  });

  it('an extra ServiceCIDR adds its range; one being deleted while a Service uses it is still routed, with a warning', async () => {
    const name = uniqueName('podgate-extra');
    await create({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name },
      spec: { cidrs: ['10.200.0.0/24'] },
    });
    const r = await run();
    assert.deepEqual(r.serviceCidrs, ['10.96.0.0/16', '10.200.0.0/24']);

    // A Service holding an address of the new range keeps it from going (the real finalizer).
    const ns = await freshNamespace(cp, 'disc-svc');
    try {
      for (let i = 0; ; i++) {
        const res = await adminRest(cp, 'POST', `/api/v1/namespaces/${ns}/services`, {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'holds-range' },
          spec: { clusterIP: '10.200.0.7', ports: [{ port: 80 }] },
        });
        if (res.status === 201) break;
        // The allocator learns the new ServiceCIDR when the controller marks it Ready.
        assert.ok(i < 100, `Service in 10.200.0.0/24: ${JSON.stringify(res.body)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
      // The controller-manager's ServiceCIDR controller marks it Ready and adds the finalizer that holds it.
      for (let i = 0; ; i++) {
        const got = await adminRest<JsonObject>(cp, 'GET', `/apis/networking.k8s.io/v1/servicecidrs/${name}`);
        const fin = ((got.body.metadata as JsonObject).finalizers ?? []) as string[];
        if (fin.includes('networking.k8s.io/service-cidr-finalizer')) break;
        assert.ok(i < 150, `no finalizer on the ServiceCIDR: ${JSON.stringify(got.body)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
      await adminRest(cp, 'DELETE', `/apis/networking.k8s.io/v1/servicecidrs/${name}`);
      const d = await run();
      assert.deepEqual(d.serviceCidrs, ['10.96.0.0/16', '10.200.0.0/24']);
      hasWarning(d.warnings, new RegExp(`ServiceCIDR ${name} is being deleted; its range stays routed`));
    } finally {
      await adminRest(cp, 'DELETE', `/api/v1/namespaces/${ns}/services/holds-range`);
      await dropNamespace(cp, ns);
    }
  });

  it('flannel net-conf.json in kube-flannel wins over kubeadm and the node slices (dual stack)', async () => {
    await create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-flannel' } });
    await create(fromSample('flannel-kube-flannel-cfg-dual-stack-reconstructed.json'));
    const r = await run();
    assert.deepEqual(r.podCidrs, ['10.244.0.0/16', '2001:cafe:42::/56']);
    assert.equal(r.podCidrSource, 'kube-flannel-cfg net-conf.json (kube-flannel)');
    assert.deepEqual(disagreements(r.warnings), []);
  });

  it('flannel in kube-system (older manifests)', async () => {
    await create(
      fromSample('flannel-kube-flannel-cfg.json', (o) => {
        (o.metadata as JsonObject).namespace = 'kube-system';
      }),
    );
    const r = await run();
    assert.deepEqual(r.podCidrs, ['10.244.0.0/16']);
    assert.equal(r.podCidrSource, 'kube-flannel-cfg net-conf.json (kube-system)');
  });

  describe('Calico IPPools through the CRD', () => {
    before(async () => {
      await kubectl(cp, ['apply', '-f', CALICO_CRD]);
      await kubectl(cp, [
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        'crd/ippools.crd.projectcalico.org',
      ]);
    });
    after(async () => {
      await kubectl(cp, ['delete', '-f', CALICO_CRD, '--wait=true', '--timeout=60s']);
    });

    it('the IPPool wins and disagrees with kubeadm podSubnet: the warning names both', async () => {
      await create(fromSample('calico-ippool-default-ipv4-crd.projectcalico.org-v1.json'));
      await create(fromSample('kubeadm-config-v1beta3-single-stack.json'));
      const r = await run();
      assert.deepEqual(r.podCidrs, ['192.168.0.0/16']);
      assert.equal(r.podCidrSource, 'Calico IPPools (crd.projectcalico.org/v1)');
      hasWarning(
        r.warnings,
        /10\.244\.0\.0\/16 from kubeadm-config networking.podSubnet is not inside 192\.168\.0\.0\/16 from Calico/,
      );
    });

    it('a disabled pool is left out; with no enabled pool the next source answers', async () => {
      await create(
        fromSample('calico-ippool-default-ipv4-crd.projectcalico.org-v1.json', (o) => {
          (o.spec as JsonObject).disabled = true;
        }),
      );
      const r = await run();
      assert.deepEqual(r.podCidrs, ['10.244.0.0/24', '10.244.1.0/24']);
      assert.match(r.podCidrSource, /node.spec.podCIDRs/);
    });
  });

  it("Cilium's default cluster pool 10.0.0.0/8 overlaps the client subnet 10.140.0.0/16", async () => {
    await create(fromSample('cilium-config-cluster-pool-trimmed.json'));
    const r = await run();
    assert.deepEqual(r.podCidrs, ['10.0.0.0/8']);
    assert.equal(r.podCidrSource, 'cilium-config cluster-pool (kube-system)');
    hasWarning(
      r.overlaps,
      /vpn.clientSubnet 10\.140\.0\.0\/16 overlaps pod CIDR \(cilium-config cluster-pool \(kube-system\)\) 10\.0\.0\.0\/8/,
    );
  });

  it('an office LAN overlapping the real service range is an overlap naming both', async () => {
    const r = await run({ 'vpn.officeLans': ['10.96.128.0/20'] });
    assert.deepEqual(r.overlaps, [
      'service CIDR (ServiceCIDR objects (networking.k8s.io/v1)) 10.96.0.0/16 overlaps vpn.officeLans 10.96.128.0/20',
    ]);
  });

  it('a k3s server node: its defaults give the pod range; the node InternalIP is listed', async () => {
    await create(fromSample('node-k3s-flannel-reconstructed.json'));
    const r = await run();
    assert.deepEqual(r.podCidrs, ['10.42.0.0/16']);
    assert.match(r.podCidrSource, /^k3s defaults \(node vm-165.tests.lab.net\): cluster-cidr$/);
    assert.deepEqual(r.nodeIps, ['172.18.0.2', '172.18.0.3', '10.54.65.165']);
    // The ServiceCIDR API answers first; the k3s default service range is compared with it.
    assert.deepEqual(r.serviceCidrs, ['10.96.0.0/16']);
    hasWarning(r.warnings, /10\.43\.0\.0\/16 from k3s defaults .* is not inside 10\.96\.0\.0\/16/);
  });

  it('a k3s server node with --cluster-cidr/--service-cidr in node-args', async () => {
    await create(
      fromSample('node-k3s-flannel-reconstructed.json', (o) => {
        const m = o.metadata as JsonObject;
        m.annotations = {
          ...(m.annotations as JsonObject),
          'k3s.io/node-args': JSON.stringify(['server', '--cluster-cidr', '10.52.0.0/16', '--service-cidr=10.53.0.0/16']),
        }; // prettier-ignore
        (o.spec as JsonObject).podCIDR = '10.52.0.0/24';
        (o.spec as JsonObject).podCIDRs = ['10.52.0.0/24'];
      }),
    );
    const r = await run();
    assert.deepEqual(r.podCidrs, ['10.52.0.0/16']);
    assert.match(r.podCidrSource, /k3s.io\/node-args on node vm-165/);
    hasWarning(r.warnings, /10\.53\.0\.0\/16 from k3s.io\/node-args .* is not inside 10\.96\.0\.0\/16/);
  });

  it("the dry-run probe reads the range from this release's real 422, and stores nothing", async () => {
    const err = await kube.createDryRun(structuredClone(PROBE_SERVICE)).then(
      () => assert.fail('a Service with clusterIP 0.0.0.0 was accepted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof KubeApiError);
    assert.equal(err.kubeStatus, 422);
    // The sample recorded for 1.34+ (dry-run) is what this server says, with its own range.
    const recorded = sample<{ message: string }>(
      'status-svc-clusterip-out-of-range-k8s-1.34plus-dryrun.json',
    );
    assert.equal(
      err.kubeMessage,
      recorded.message.replace('10.96.0.0/12', '10.96.0.0/16').replace('invalid-svc', 'podgate-range-probe'),
    );
    assert.equal(await probeServiceRange(kube), '10.96.0.0/16');
    const stored = await adminRest(cp, 'GET', '/api/v1/namespaces/default/services/podgate-range-probe');
    assert.equal(stored.status, 404, 'dry run stores nothing');
  });

  it('a ServiceAccount with no rights: every source is a 403 warning naming it; discovery still answers', async () => {
    const ns = await freshNamespace(cp, 'disc-rbac');
    try {
      await adminRest(cp, 'POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'nobody' },
      });
      const token = await serviceAccountToken(cp, ns, 'nobody');
      const r = await run({}, createKubeApi(tokenKubeConfig(cp, token), { timeoutMs: 10_000 }));
      assert.deepEqual(r.podCidrs, []);
      assert.deepEqual(r.serviceCidrs, []);
      hasWarning(r.warnings, /skipped \(no permission\): list Node \(v1\): 403 Forbidden/);
      hasWarning(r.warnings, /skipped \(no permission\): read ConfigMap kube-system\/kubeadm-config: 403/);
      hasWarning(r.warnings, /skipped \(no permission\): list ServiceCIDR/);
      hasWarning(r.warnings, /dry-run Service probe skipped \(403\)/);
      hasWarning(r.warnings, /pod CIDR unknown/);
    } finally {
      await dropNamespace(cp, ns);
    }
  });

  it('a wrong token (a real 401) fails discovery with the object named', async () => {
    const api = createKubeApi(tokenKubeConfig(cp, 'not-a-token'), { timeoutMs: 10_000 });
    await assert.rejects(run({}, api), /list Node \(v1\): 401 Unauthorized/);
  });
});
