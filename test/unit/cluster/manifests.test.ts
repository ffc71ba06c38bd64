import assert from 'node:assert/strict';
import { bundleFromSecret } from '../../../src/cluster/secret-watch-source.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Lease } from 'kubernetes-models/coordination.k8s.io/v1/Lease';
import { replicaLease } from '../../../src/cluster/replica-status.js';
import { loadTemplate } from '../../../src/lib/templates.js';
import { buildManifests, manifestFiles, type ManifestInput } from '../../../src/cluster/manifests.js';
import type { KubeObject } from '../../../src/cluster/kube-api.js';
import { CHECKSUM_ANNOTATION } from '../../../src/cluster/pod-layout.js';
import type { AppContext } from '../../../src/services/context.js';
import { testContext } from '../../helpers/context.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  Namespace,
  Secret,
  ConfigMap,
  Service,
  ServiceAccount,
  Deployment,
  Role,
  RoleBinding,
  ClusterRoleBinding,
  PodDisruptionBudget,
};

type Obj = KubeObject & { spec?: any; data?: any; rules?: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('cluster manifests', function () {
  this.timeout(60_000);
  let dir: string;
  let ctx: AppContext;
  let input: ManifestInput;
  let objects: Obj[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-manifests-'));
    ctx = await testContext(dir, { 'vpn.dns.servers': ['10.96.0.10'] });
    input = {
      config: ctx.config,
      server: await ctx.server.ensure(),
      bundle: await ctx.revocation.bundle(),
      network: {
        podCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'],
        serviceCidrs: ['10.96.0.0/12'],
        extraRoutes: [],
        dnsServers: ['10.96.0.10'],
        dnsDomain: 'cluster.local',
        searchDomains: [],
      },
      serverConfTemplate: loadTemplate('server.conf.hbs'),
    };
    objects = buildManifests(input) as Obj[];
  });
  after(async () => {
    await ctx?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const find = (kind: string, name?: string) => {
    const o = objects.find((x) => x.kind === kind && (!name || x.metadata.name === name));
    assert.ok(o, `${kind} ${name ?? ''} built`);
    return o;
  };

  it('every object validates against the Kubernetes OpenAPI schema (kubernetes-models)', () => {
    assert.deepEqual(
      objects.map((o) => o.kind),
      [
        'Namespace',
        'ServiceAccount',
        'Role',
        'RoleBinding',
        'ClusterRoleBinding',
        'Secret',
        'Secret',
        'ConfigMap',
        'ConfigMap',
        'Service',
        'PodDisruptionBudget',
        'Deployment',
      ],
    );
    for (const o of objects) {
      const Model = MODELS[o.kind];
      assert.ok(Model, o.kind);
      assert.doesNotThrow(() => new Model(structuredClone(o)).validate(), `${o.kind} ${o.metadata.name}`);
      if (o.kind !== 'Namespace' && o.kind !== 'ClusterRoleBinding')
        assert.equal(o.metadata.namespace, 'middleware');
    }
  });

  it('the validator really rejects a broken object (guards the test above)', () => {
    const d = structuredClone(find('Deployment'));
    d.spec.template.spec.containers[0].ports[0].containerPort = 'x';
    assert.throws(() => new Deployment(d as never).validate(), /containerPort/);
  });

  it('Service is a NodePort on 30030 with the configured protocol', () => {
    const s = find('Service');
    assert.equal(s.spec.type, 'NodePort');
    assert.deepEqual(s.spec.ports, [
      { name: 'openvpn', protocol: 'UDP', port: 30030, targetPort: 30030, nodePort: 30030 },
    ]);
    assert.deepEqual(s.spec.selector, find('Deployment').spec.template.metadata.labels);
  });

  it('Deployment: one replica, Recreate, openvpn with NET_ADMIN and the agent sidecar sharing the CRL and management volumes', () => {
    const d = find('Deployment');
    assert.equal(d.spec.replicas, 1);
    assert.equal(d.spec.strategy.type, 'Recreate');
    const [openvpn, agent] = d.spec.template.spec.containers;
    assert.equal(openvpn.name, 'openvpn');
    assert.ok(openvpn.securityContext.capabilities.add.includes('NET_ADMIN'));
    const script = openvpn.command[2] as string;
    assert.match(script, /mknod \/dev\/net\/tun c 10 200/);
    assert.match(script, /ip_forward/);
    // the kubelet turns forwarding on in the pod's namespace (allowed there by --allowed-unsafe-sysctls)
    assert.deepEqual(d.spec.template.spec.securityContext.sysctls, [
      { name: 'net.ipv4.ip_forward', value: '1' },
    ]);
    assert.match(script, /iptables -t nat -A POSTROUTING -s 10\.140\.0\.0\/16 -j MASQUERADE/);
    assert.match(script, /exec openvpn --config \/etc\/podgate\/config\/server.conf/);
    // Ready only with the agent's verified CRL in place and openvpn up
    assert.match(
      openvpn.readinessProbe.exec.command.join(' '),
      /test -s \/run\/podgate\/crl\/crl.pem && test -S \/run\/podgate\/mgmt\/openvpn.sock/,
    );
    assert.equal(agent.name, 'agent');
    assert.deepEqual(agent.command, ['podgate', 'agent', '--cluster', '--access']);
    for (const vol of ['crl', 'mgmt']) {
      assert.ok(openvpn.volumeMounts.some((m: { name: string }) => m.name === vol));
      assert.ok(agent.volumeMounts.some((m: { name: string }) => m.name === vol));
    }
    assert.equal(d.spec.template.spec.serviceAccountName, 'podgate-agent');
  });

  it('Role grants the agent only get/list/watch on its CRL Secret, get/patch on its status ConfigMap, get/create/patch on Leases', () => {
    assert.deepEqual(find('Role').rules, [
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: ['podgate-crl', 'podgate-access'],
        verbs: ['get', 'list', 'watch'],
      },
      {
        apiGroups: [''],
        resources: ['configmaps'],
        resourceNames: ['podgate-agent-status'],
        verbs: ['get', 'patch'],
      },
      // its replica Lease (named after its pod: no resourceNames possible); never delete, list or update
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'patch'] },
    ]);
    // the cluster-wide reads of the access watch come from one ClusterRole, bound to this agent only
    const b = find('ClusterRoleBinding');
    assert.equal(b.metadata.name, 'podgate-agent-access-middleware');
    assert.deepEqual((b as unknown as { subjects: unknown }).subjects, [
      { kind: 'ServiceAccount', name: 'podgate-agent', namespace: 'middleware' },
    ]);
  });

  it('Deployment for access rules: the agent adds NET_ADMIN only, both containers share the client-config-dir; enforce adds the DNS-only table before openvpn', () => {
    const d = find('Deployment');
    const [openvpn, agent] = d.spec.template.spec.containers;
    assert.deepEqual(agent.securityContext.capabilities, { add: ['NET_ADMIN'], drop: ['ALL'] });
    assert.equal(agent.securityContext.readOnlyRootFilesystem, true);
    assert.equal(agent.securityContext.allowPrivilegeEscalation, false);
    const ccd = (c: { volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] }) =>
      c.volumeMounts.find((m) => m.name === 'ccd');
    assert.deepEqual(ccd(agent), { name: 'ccd', mountPath: '/run/podgate/ccd' });
    assert.deepEqual(ccd(openvpn), { name: 'ccd', mountPath: '/run/podgate/ccd', readOnly: true });
    assert.ok(
      d.spec.template.spec.volumes.some(
        (v: { name: string; emptyDir?: unknown }) => v.name === 'ccd' && v.emptyDir,
      ),
    );
    // open: no table at start, no identity check at connect
    assert.doesNotMatch(openvpn.command[2] as string, /nft/);
    assert.doesNotMatch(
      find('ConfigMap', 'podgate-openvpn').data['server.conf'] as string,
      /client-config-dir/,
    );
    const objs = buildManifests({ ...input, accessMode: 'enforce' });
    const e = objs.find((o) => o.kind === 'Deployment') as Obj;
    const script = e.spec.template.spec.containers[0].command[2] as string;
    assert.match(script, /create table inet podgate/);
    assert.match(script, /add element inet podgate dns \{ 10\.96\.0\.10 \}/);
    assert.ok(script.indexOf('nft -f -') < script.indexOf('exec openvpn'), 'table before openvpn');
    const env = Object.fromEntries(
      (e.spec.template.spec.containers[1].env as { name: string; value?: string }[]).map((v) => [
        v.name,
        v.value,
      ]),
    );
    assert.equal(env.PODGATE_ACCESS_MODE_BEFORE_BUNDLE, 'enforce');
    assert.equal(env.PODGATE_VPN_DNS_SERVERS, '10.96.0.10');
    assert.equal(env.PODGATE_VPN_CLIENT_SUBNET, '10.140.0.0/16');
    const conf = (objs.find((o) => o.metadata.name === 'podgate-openvpn' && o.kind === 'ConfigMap') as Obj)
      .data['server.conf'] as string;
    assert.match(conf, /^client-config-dir \/run\/podgate\/ccd$/m);
    assert.match(conf, /^ccd-exclusive$/m);
  });

  it('server.conf points into the pod mounts and pushes only the IPv4 routes', () => {
    const conf = find('ConfigMap', 'podgate-openvpn').data['server.conf'] as string;
    assert.match(conf, /^crl-verify \/run\/podgate\/crl\/crl.pem$/m);
    assert.match(
      conf,
      /^management \/run\/podgate\/mgmt\/openvpn.sock unix \/etc\/podgate\/server\/management.pwd$/m,
    );
    assert.match(conf, /^ca \/etc\/podgate\/server\/ca.crt$/m);
    assert.match(conf, /^tls-crypt-v2 \/etc\/podgate\/server\/tls-crypt-v2-server.key$/m);
    assert.match(conf, /^push "route 10.244.0.0 255.255.0.0"$/m);
    assert.match(conf, /^push "route 10.96.0.0 255.240.0.0"$/m);
    assert.doesNotMatch(conf, /fd00/);
  });

  it('dual stack (vpn.clientSubnet6): server-ipv6 + IPv6 routes and DNS, NAT66 and IPv6 forwarding in the pod, the agent told the range', () => {
    const config = { ...input.config, vpn: { ...input.config.vpn, clientSubnet6: 'fd00:140::/64' } };
    const network = { ...input.network, dnsServers: ['10.96.0.10', 'fd00:10:96::a'] };
    const objs = buildManifests({ ...input, config, network, accessMode: 'enforce' }) as Obj[];
    const conf = (objs.find((o) => o.metadata.name === 'podgate-openvpn' && o.kind === 'ConfigMap') as Obj)
      .data['server.conf'] as string;
    assert.match(conf, /^server-ipv6 fd00:140::\/64$/m);
    assert.match(conf, /^push "route-ipv6 fd00:10:244::\/56"$/m);
    assert.match(conf, /^push "dhcp-option DNS6 fd00:10:96::a"$/m);
    const d = objs.find((o) => o.kind === 'Deployment') as Obj;
    assert.doesNotThrow(() => new Deployment(structuredClone(d) as never).validate());
    assert.deepEqual(d.spec.template.spec.securityContext.sysctls, [
      { name: 'net.ipv4.ip_forward', value: '1' },
      { name: 'net.ipv6.conf.all.forwarding', value: '1' },
    ]);
    const script = d.spec.template.spec.containers[0].command[2] as string;
    assert.match(script, /ip6tables -t nat -A POSTROUTING -s fd00:140::\/64 -j MASQUERADE/);
    assert.match(script, /net\/ipv6\/conf\/all\/forwarding/);
    assert.match(script, /add element inet podgate dns6 \{ fd00:10:96::a \}/);
    const env = Object.fromEntries(
      (d.spec.template.spec.containers[1].env as { name: string; value?: string }[]).map((v) => [
        v.name,
        v.value,
      ]),
    );
    assert.equal(env.PODGATE_VPN_CLIENT_SUBNET6, 'fd00:140::/64');
    assert.equal(env.PODGATE_VPN_DNS_SERVERS, '10.96.0.10,fd00:10:96::a');
    // IPv4 only (the other tests' config): no IPv6 anywhere, even with an IPv6 DNS address discovered
    const v4 = buildManifests({ ...input, network }) as Obj[];
    const v4conf = (v4.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'podgate-openvpn') as Obj)
      .data['server.conf'] as string;
    assert.doesNotMatch(v4conf, /fd00|server-ipv6/);
    assert.doesNotMatch(JSON.stringify(v4.find((o) => o.kind === 'Deployment')), /ip6tables|ipv6|fd00/);
  });

  it('Secrets carry the server material and the revocation bundle', () => {
    const server = find('Secret', 'podgate-server').data as Record<string, string>;
    const dec = (v: string) => Buffer.from(v, 'base64').toString('utf8');
    assert.equal(dec(server['ca.crt']!), input.server.caCertPem);
    assert.equal(dec(server['server.key']!), input.server.keyPem);
    assert.equal(dec(server['tls-crypt-v2-server.key']!), input.server.tlsCryptV2ServerKeyPem);
    const crl = find('Secret', 'podgate-crl').data as Record<string, string>;
    assert.equal(dec(crl['crl.pem']!), input.bundle.crlPem);
    // the CRL is stored once: revocations.json has the rest, and the agent reads both back
    const { crlPem: _crl, ...rest } = input.bundle;
    assert.deepEqual(JSON.parse(dec(crl['revocations.json']!)), rest);
    assert.deepEqual(bundleFromSecret(find('Secret', 'podgate-crl')), input.bundle);
  });

  it('pure: same inputs give the same objects; config changes roll the pod, CRL changes do not', () => {
    assert.deepEqual(buildManifests(input), objects);
    const sum = (objs: KubeObject[]) =>
      (objs.find((o) => o.kind === 'Deployment') as Obj).spec.template.metadata.annotations[
        CHECKSUM_ANNOTATION
      ];
    const base = sum(objects);
    assert.match(base, /^[0-9a-f]{64}$/);
    const cfg = structuredClone(input.config);
    cfg.vpn.clientSubnet = '10.150.0.0/16';
    assert.notEqual(sum(buildManifests({ ...input, config: cfg })), base);
    assert.equal(sum(buildManifests({ ...input, bundle: { ...input.bundle, crlNumber: 99 } })), base);
  });

  it('YAML files parse back to the same objects, in apply order', () => {
    const files = manifestFiles(objects);
    assert.equal(files[0]!.name, '00-namespace-middleware.yaml');
    assert.deepEqual(
      [...files.map((f) => f.name)].sort(),
      files.map((f) => f.name),
    );
    files.forEach((f, i) => assert.deepEqual(parseYaml(f.yaml), objects[i]));
  });

  it('one replica: Recreate, no spread, a budget that never blocks a drain, server.conf without client-config-dir in open mode', () => {
    assert.equal(find('Deployment').spec.replicas, 1);
    assert.equal(find('Deployment').spec.template.spec.topologySpreadConstraints, undefined);
    assert.deepEqual(find('PodDisruptionBudget').spec, {
      maxUnavailable: 1,
      selector: { matchLabels: find('Deployment').spec.selector.matchLabels },
    });
    assert.doesNotMatch(find('ConfigMap', 'podgate-openvpn').data['server.conf'], /client-config-dir/);
  });

  it('vpn.replicas 3: three pods spread by hostname (ScheduleAnyway), one at a time with none taken first, a budget keeping one, the same addresses on every replica', () => {
    const cfg = structuredClone(input.config);
    cfg.vpn.replicas = 3;
    const objs = buildManifests({ ...input, config: cfg }) as Obj[];
    const d = objs.find((o) => o.kind === 'Deployment')!;
    assert.equal(d.spec.replicas, 3);
    assert.deepEqual(d.spec.strategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    assert.deepEqual(d.spec.template.spec.topologySpreadConstraints, [
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: d.spec.template.metadata.labels },
      },
    ]);
    const pdb = objs.find((o) => o.kind === 'PodDisruptionBudget')!;
    assert.deepEqual(pdb.spec, { minAvailable: 1, selector: { matchLabels: d.spec.selector.matchLabels } });
    for (const o of objs)
      assert.doesNotThrow(() => new MODELS[o.kind]!(structuredClone(o)).validate(), o.kind);
    // open mode: the agent's files pin each device's address, but a device without one is not refused
    const conf = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'podgate-openvpn')!.data[
      'server.conf'
    ] as string;
    assert.match(conf, /^client-config-dir \/run\/podgate\/ccd$/m);
    assert.doesNotMatch(conf, /ccd-exclusive/);
    // a device with no file yet gets an address from the holding range only, never another device's
    assert.match(conf, /^server 10\.140\.0\.0 255\.255\.0\.0 nopool$/m);
    assert.match(conf, /^ifconfig-pool 10\.140\.255\.0 10\.140\.255\.254 255\.255\.0\.0$/m);
    const enforce = buildManifests({ ...input, config: cfg, accessMode: 'enforce' }) as Obj[];
    assert.match(
      enforce.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'podgate-openvpn')!.data[
        'server.conf'
      ],
      /^ccd-exclusive$/m,
    );
    // the agent learns its pod's uid (its replica Lease's owner)
    const agent = d.spec.template.spec.containers[1];
    assert.deepEqual(
      agent.env.find((e: { name: string }) => e.name === 'POD_UID'),
      {
        name: 'POD_UID',
        valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } },
      },
    );
  });

  it('a replica Lease validates and is owned by its pod', () => {
    const lease = replicaLease(
      'middleware',
      { name: 'podgate-openvpn-abc', uid: '0b6c1d2e-0000-4000-8000-000000000001' },
      {
        pod: 'podgate-openvpn-abc',
        management: true,
        sessions: [],
        handled: {},
        updatedAt: '2026-12-06T05:00:00.000Z',
      },
      new Date('2026-12-06T05:00:00.123Z'),
    );
    assert.doesNotThrow(() => new Lease(structuredClone(lease) as never).validate());
    assert.equal((lease.spec as { renewTime: string }).renewTime, '2026-12-06T05:00:00.123000Z');
    assert.deepEqual(lease.metadata.ownerReferences, [
      {
        apiVersion: 'v1',
        kind: 'Pod',
        name: 'podgate-openvpn-abc',
        uid: '0b6c1d2e-0000-4000-8000-000000000001',
      },
    ]);
  });
});
