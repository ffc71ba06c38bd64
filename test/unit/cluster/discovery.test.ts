/**
 * Discovery against the in-process fake, only for what the real v1.34 control plane of
 * test/integration/cluster/discovery-real.test.ts cannot show: a server without the ServiceCIDR API or
 * with only v1beta1 (Kubernetes ≤1.32, so the kubeadm/k3s service ranges and the dry-run probe answer),
 * other releases' probe error texts, a 500/503 from one source (an aggregated API) and a webhook that
 * refuses the dry-run probe. Pure parsing (parseServiceRangeError, findRangeOverlaps) needs no server.
 */
import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config/load.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import {
  discover,
  findRangeOverlaps,
  lastDiscovery,
  DISCOVERY_SETTING,
} from '../../../src/cluster/discovery.js';
import { parseServiceRangeError } from '../../../src/cluster/discovery-sources.js';
import {
  FakeKubeApi,
  PROBE_FORMS,
  sample,
  type FakeOptions,
  type ProbeForm,
} from '../../helpers/fake-kube-api.js';
import type { JsonObject } from '../../helpers/fake-kube-ssa.js';

const config = (over: Record<string, unknown> = {}) => loadConfig({ env: {}, overrides: over });

interface Case {
  name: string;
  options?: FakeOptions;
  seed: (string | [string, (o: JsonObject) => void])[];
  expect: {
    pods: string[];
    podSource: RegExp;
    services: string[];
    serviceSource: RegExp;
    dns?: string;
    dns6?: string;
    domain?: string;
    nodes?: string[];
  };
  warnings?: RegExp[];
  overlaps?: RegExp[];
  configOverrides?: Record<string, unknown>;
}

const KUBEADM_NODE = 'node-kubeadm-kind-single-stack-v1.21.json';
const KUBE_DNS = 'service-kube-dns-kubeadm.json';

const cases: Case[] = [
  {
    name: 'kubeadm dual stack without ServiceCIDR: both families from kubeadm-config',
    options: { serviceCidrApi: 'none' },
    seed: ['kubeadm-config-v1beta4-dual-stack.json', 'node-kubeadm-kind-dual-stack-v1.27.json', KUBE_DNS],
    expect: {
      pods: ['10.244.0.0/16', '2001:db8:42::/56'],
      podSource: /kubeadm-config networking.podSubnet/,
      services: ['10.96.0.0/16', '2001:db8:42:1::/112'],
      serviceSource: /kubeadm-config networking.serviceSubnet/,
    },
    // The kind node (a real dump) was set up with fd00:10:244::/56, the reconstructed kubeadm-config with 2001:db8:42::/56.
    warnings: [
      /fd00:10:244::\/64 from node.spec.podCIDRs \(per-node ranges\) is not inside 10.244.0.0\/16, 2001:db8:42::\/56/,
    ],
    // The kubeadm docs' dual-stack example really does put the service /112 inside the pod /56.
    overlaps: [
      /pod CIDR \(kubeadm-config networking.podSubnet\) 2001:db8:42::\/56 overlaps service CIDR \(kubeadm-config networking.serviceSubnet\) 2001:db8:42:1::\/112/,
    ],
  },
  {
    name: 'dual-stack kube-dns: its IPv6 ClusterIP is the IPv6 DNS server',
    options: { serviceCidrApi: 'none' },
    seed: [
      'kubeadm-config-v1beta4-dual-stack.json',
      'node-kubeadm-kind-dual-stack-v1.27.json',
      [
        KUBE_DNS,
        (o) => {
          const spec = o.spec as JsonObject;
          spec.clusterIPs = ['10.96.0.10', '2001:db8:42:1::a'];
          spec.ipFamilies = ['IPv4', 'IPv6'];
          spec.ipFamilyPolicy = 'PreferDualStack';
        },
      ],
    ],
    expect: {
      pods: ['10.244.0.0/16', '2001:db8:42::/56'],
      podSource: /kubeadm-config networking.podSubnet/,
      services: ['10.96.0.0/16', '2001:db8:42:1::/112'],
      serviceSource: /kubeadm-config networking.serviceSubnet/,
      dns: '10.96.0.10',
      dns6: '2001:db8:42:1::a',
    },
    warnings: [/fd00:10:244::\/64 from node.spec.podCIDRs/],
    overlaps: [/2001:db8:42::\/56 overlaps service CIDR/],
  },
  {
    name: 'ServiceCIDR v1beta1 only (1.31-1.32): all ServiceCIDRs pushed',
    options: { serviceCidrApi: 'v1beta1' },
    seed: [
      'kubeadm-config-v1beta3-single-stack.json',
      KUBEADM_NODE,
      KUBE_DNS,
      'servicecidr-kubernetes-networking-v1beta1.json',
      [
        'servicecidr-newcidr1-terminating-docs.json',
        (o) => {
          o.apiVersion = 'networking.k8s.io/v1beta1';
          (o.spec as JsonObject).cidrs = ['10.200.0.0/24'];
        },
      ],
    ],
    expect: {
      pods: ['10.244.0.0/16'],
      podSource: /kubeadm/,
      services: ['10.96.0.0/12', '10.200.0.0/24'],
      serviceSource: /v1beta1/,
    },
  },
  {
    name: 'k3s: defaults recognised from the node labels, DNS from kube-dns',
    options: { serviceCidrApi: 'none' },
    seed: ['node-k3s-flannel-reconstructed.json', 'service-kube-dns-k3s.json'],
    expect: {
      pods: ['10.42.0.0/16'],
      podSource: /k3s defaults/,
      services: ['10.43.0.0/16'],
      serviceSource: /k3s defaults/,
      dns: '10.43.0.10',
      nodes: ['10.54.65.165'],
    },
  },
];

const probeCases: [ProbeForm, string | undefined][] = [
  ['1.23-1.33', '10.97.0.0/16'],
  ['multicidr-1.33', undefined],
  ['dryrun-success-1.13-1.22', undefined],
];

describe('cluster discovery against the fake API server (releases other than v1.34)', () => {
  let fake: FakeKubeApi;
  afterEach(async () => fake?.close());

  for (const c of cases) {
    it(c.name, async () => {
      fake = await FakeKubeApi.start(c.options);
      for (const s of c.seed) {
        if (Array.isArray(s)) fake.seedSample(s[0], s[1]);
        else fake.seedSample(s);
      }
      const settings = new Map<string, string>();
      const store = {
        getSetting: (k: string) => settings.get(k),
        setSetting: (k: string, v: string) => void settings.set(k, v),
      };
      const cfg = config(c.configOverrides);
      const r = await discover(cfg, { kube: createKubeApi(fake.kubeConfig()), settings: store });
      assert.deepEqual(r.podCidrs, c.expect.pods);
      assert.match(r.podCidrSource, c.expect.podSource);
      assert.deepEqual(r.serviceCidrs, c.expect.services);
      assert.match(r.serviceCidrSource, c.expect.serviceSource);
      if (c.expect.dns) assert.equal(r.dnsServer, c.expect.dns);
      assert.equal(r.dnsServer6, c.expect.dns6);
      if (c.expect.domain) assert.equal(r.clusterDomain, c.expect.domain);
      if (c.expect.nodes) assert.deepEqual(r.nodeIps, c.expect.nodes);
      for (const w of c.warnings ?? [])
        assert.ok(
          r.warnings.some((x) => w.test(x)),
          `warning ${w} in ${JSON.stringify(r.warnings)}`,
        );
      if (!c.warnings)
        assert.deepEqual(
          r.warnings.filter((w) => /disagree/.test(w)),
          [],
        );
      for (const o of c.overlaps ?? [])
        assert.ok(
          r.overlaps.some((x) => o.test(x)),
          `overlap ${o} in ${JSON.stringify(r.overlaps)}`,
        );
      if (!c.overlaps) assert.deepEqual(r.overlaps, []);
      // Stored for the profile renderer, with the field names services/network.ts reads.
      assert.ok(settings.get(DISCOVERY_SETTING));
      assert.deepEqual(lastDiscovery(store)?.podCidrs, c.expect.pods);
      // No probe unless nothing else told the service range.
      assert.ok(!fake.requests.some((q) => q.verb === 'create'));
    });
  }

  for (const [form, range] of probeCases) {
    it(`probe fallback, ${form} error form: ${range ?? 'no range named, warns'}`, async () => {
      fake = await FakeKubeApi.start({
        serviceCidrApi: 'none',
        probeForm: form,
        serviceRange: '10.97.0.0/16',
      });
      fake.seedSample(KUBEADM_NODE);
      const r = await discover(config(), { kube: createKubeApi(fake.kubeConfig()) });
      const probe = fake.requests.filter((q) => q.verb === 'create');
      assert.equal(probe.length, 1);
      assert.equal(probe[0]!.query.dryRun, 'All');
      assert.equal(
        fake.getObject('v1', 'Service', 'podgate-range-probe', 'default'),
        undefined,
        'dry run stores nothing',
      );
      if (range) {
        assert.deepEqual(r.serviceCidrs, [range]);
        assert.match(r.serviceCidrSource, /dry-run Service probe/);
      } else {
        assert.deepEqual(r.serviceCidrs, []);
        assert.ok(r.warnings.some((w) => /service CIDR unknown/.test(w)));
      }
      assert.deepEqual(r.podCidrs, ['10.244.0.0/24']);
      assert.match(r.podCidrSource, /node.spec.podCIDRs/);
    });
  }
});

describe('discovery when a source fails in a way a real server cannot be made to', () => {
  let fake: FakeKubeApi;
  afterEach(async () => fake?.close());
  it('a 500 or 503 on one source is a warning naming it; discovery goes on with the others', async () => {
    fake = await FakeKubeApi.start();
    fake.seedSample(KUBEADM_NODE);
    fake.seedSample('servicecidr-kubernetes-networking-v1.json');
    fake.inject({ verb: 'get', kind: 'ConfigMap', name: 'kubeadm-config', status: 500 });
    fake.inject({ verb: 'get', kind: 'ConfigMap', name: 'cilium-config', status: 503 });
    const r = await discover(config(), { kube: createKubeApi(fake.kubeConfig()) });
    assert.deepEqual(r.podCidrs, ['10.244.0.0/24']);
    assert.ok(r.serviceCidrs.length > 0, 'ServiceCIDR still read');
    assert.ok(
      r.warnings.some((w) =>
        /skipped \(500 from the API server\): read ConfigMap kube-system\/kubeadm-config/.test(w),
      ),
      r.warnings.join('\n'),
    );
    assert.ok(
      r.warnings.some((w) =>
        /skipped \(503 from the API server\): read ConfigMap kube-system\/cilium-config/.test(w),
      ),
    );
  });
  it('a refused dry-run probe (a webhook that rejects dry-run, 500) is a warning, not a failure', async () => {
    fake = await FakeKubeApi.start({ serviceCidrApi: 'none', serviceRange: '10.97.0.0/16' });
    fake.seedSample(KUBEADM_NODE);
    fake.inject({ verb: 'create', kind: 'Service', status: 500 });
    const r = await discover(config(), { kube: createKubeApi(fake.kubeConfig()) });
    assert.deepEqual(r.podCidrs, ['10.244.0.0/24']);
    assert.deepEqual(r.serviceCidrs, []);
    assert.ok(
      r.warnings.some((w) => /dry-run Service probe skipped \(500\)/.test(w)),
      r.warnings.join('\n'),
    );
  });
});

describe('parseServiceRangeError', () => {
  it('reads the one CIDR of a reworded message and refuses to guess between two', () => {
    assert.equal(
      parseServiceRangeError('spec.clusterIP: Invalid value: "0.0.0.0": hors de la plage 10.96.0.0/12'),
      '10.96.0.0/12',
    );
    assert.equal(parseServiceRangeError('ranges 10.96.0.0/12 and fd00::/108 are configured'), undefined);
    assert.equal(parseServiceRangeError('failed calling webhook "x": no range here'), undefined);
  });
  for (const [form, file] of Object.entries(PROBE_FORMS)) {
    const body = sample<{ message?: string }>(file);
    if (!body.message) continue;
    const expected = /does not match the current range/.test(body.message) ? undefined : '10.96.0.0/12';
    it(`${form}: ${expected ?? 'no range'}`, () =>
      assert.equal(parseServiceRangeError(body.message!), expected));
  }
});

describe('findRangeOverlaps', () => {
  it('config routes override discovery', () => {
    const cfg = config({ 'vpn.routes.pods': ['10.244.0.0/16'] });
    const d = {
      podCidrs: ['10.0.0.0/8'],
      podCidrSource: 'cilium',
      serviceCidrs: ['10.96.0.0/12'],
      serviceCidrSource: 'x',
    };
    assert.deepEqual(findRangeOverlaps(cfg, d), []);
    assert.deepEqual(findRangeOverlaps(config(), d), [
      'vpn.clientSubnet 10.140.0.0/16 overlaps pod CIDR (cilium) 10.0.0.0/8',
      'pod CIDR (cilium) 10.0.0.0/8 overlaps service CIDR (x) 10.96.0.0/12',
    ]);
  });

  it('vpn.clientSubnet6 must stay apart from the IPv6 pod and service ranges', () => {
    const d = {
      podCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'],
      podCidrSource: 'kubeadm',
      serviceCidrs: ['10.96.0.0/12', 'fd00:10:96::/112'],
      serviceCidrSource: 'x',
    };
    assert.deepEqual(findRangeOverlaps(config({ 'vpn.clientSubnet6': 'fd00:140::/64' }), d), []);
    assert.deepEqual(findRangeOverlaps(config({ 'vpn.clientSubnet6': 'fd00:10:244:7::/64' }), d), [
      'vpn.clientSubnet6 fd00:10:244:7::/64 overlaps pod CIDR (kubeadm) fd00:10:244::/56',
    ]);
  });
});
