/**
 * The agent's access watch against the real control plane (kube-apiserver v1.34 with RBAC, the real
 * scheduler, pods given addresses by the kubelet simulator), acting with a token of the agent's own
 * ServiceAccount and exactly the rights deploy gives it (its Role, the ClusterRoleBinding to
 * `podgate-agent-access`): namespaces, pods and Services created, relabelled and deleted arrive as
 * ClusterEvents; the access bundle Secret arrives parsed and never goes back a version; a connection reset
 * under the watches costs nothing; the agent can read what it needs and write nothing. Latencies from the
 * API call to the event are printed, never asserted. The 410 re-list is on the fake
 * (test/unit/cluster/access-watch.test.ts): a real server cannot be made to expire history on demand.
 */
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { join } from 'node:path';
import type { AccessBundle, ClusterEvent } from '../../../src/access/types.js';
import { AccessBundleWatch } from '../../../src/cluster/access-bundle-watch.js';
import { ClusterAccessWatch } from '../../../src/cluster/access-watch.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import type { KubeApi } from '../../../src/cluster/kube-api.js';
import {
  agentAccessBindingObject,
  agentAccessClusterRole,
  agentRole,
} from '../../../src/cluster/manager-rbac.js';
import { setLogLevel, logger } from '../../../src/lib/logger.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminRest,
  canI,
  dropNamespace,
  freshNamespace,
  kubectl,
  realCluster,
  serviceAccountToken,
  tcpRelay,
  tempDir,
  writeKubeConfig,
  tokenKubeConfig,
  type TcpRelay,
} from '../../helpers/real-cluster.js';

const RBAC = 'rbac.authorization.k8s.io';

async function until<T>(what: string, f: () => T | undefined | false, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('access watch on the real API server, as the agent', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let home: string;
  let team: string;
  let agentKube: KubeApi;
  let agentToken: string;
  const watches: ClusterAccessWatch[] = [];
  let events: { at: number; e: ClusterEvent }[];
  const latencies: Record<string, number> = {};
  const level = logger.level;

  /** The first event after index `from` matching `pred`, waited for; records its latency from `t0`. */
  const next = async (label: string, t0: number, pred: (e: ClusterEvent) => boolean, from = 0) => {
    const hit = await until(label, () => events.slice(from).find((x) => pred(x.e)));
    latencies[label] = hit.at - t0;
    return hit.e;
  };

  before(async function () {
    this.timeout(240_000);
    setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent');
    cp = await realCluster();
    home = await freshNamespace(cp, 'agenthome');
    // what deploy applies for the agent (its ServiceAccount, Role + RoleBinding, the ClusterRoleBinding),
    // and the ClusterRole the admin applies from k8s/
    const objects = [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'podgate-agent', namespace: home } },
      agentRole(home),
      {
        apiVersion: `${RBAC}/v1`,
        kind: 'RoleBinding',
        metadata: { name: 'podgate-agent', namespace: home },
        roleRef: { apiGroup: RBAC, kind: 'Role', name: 'podgate-agent' },
        subjects: [{ kind: 'ServiceAccount', name: 'podgate-agent', namespace: home }],
      },
      agentAccessClusterRole(),
      agentAccessBindingObject(home),
    ];
    await kubectl(cp, ['apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    });
    agentToken = await serviceAccountToken(cp, home, 'podgate-agent');
    agentKube = createKubeApi(tokenKubeConfig(cp, agentToken), { timeoutMs: 10_000 });
  });
  after(async () => {
    for (const w of watches) await w.stop();
    setLogLevel(level);
    if (home) {
      await adminRest(
        cp,
        'DELETE',
        `/apis/${RBAC}/v1/clusterrolebindings/${agentAccessBindingObject(home).metadata.name}`,
      );
      await dropNamespace(cp, home);
    }
    if (Object.keys(latencies).length) {
      console.log('    API call → ClusterEvent (ms; shared, loaded machine):');
      for (const [k, v] of Object.entries(latencies)) console.log(`      ${k}: ${v}`);
    }
  });

  const startWatch = (kube: KubeApi) => {
    events = [];
    const watch = new ClusterAccessWatch({ kube, retryMs: 100 });
    watches.push(watch);
    watch.start((e) => events.push({ at: Date.now(), e }));
    return watch;
  };

  /** Creates a pod; a namespace made a moment ago gets its `default` ServiceAccount (which admission
   * wants) from the controller-manager shortly after, so a 403 naming it is retried. */
  const createPod = async (ns: string, body: Record<string, unknown>) => {
    // this control plane's controller-manager may not run the ServiceAccount controller: make it here
    await adminRest(cp, 'POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default' },
    });
    for (let i = 0; ; i++) {
      const r = await adminRest<{ metadata: { uid: string }; message?: string }>(
        cp,
        'POST',
        `/api/v1/namespaces/${ns}/pods`,
        body,
      );
      if (r.status === 201 || i > 100 || !/service account/.test(JSON.stringify(r.body))) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
  };

  it('namespaces, pods and Services: create, relabel and delete arrive as ClusterEvents', async () => {
    const w = startWatch(agentKube);
    await until('the first resync', () => events.some((x) => x.e.type === 'resync-done'));
    assert.equal(events[0]!.e.type, 'resync-start');
    assert.ok(
      events.some((x) => x.e.type === 'upsert' && x.e.kind === 'namespace' && x.e.object.name === home),
      "the agent's own namespace is in the first view",
    );

    let t0 = Date.now();
    team = await freshNamespace(cp, 'team-a', { team: 'a' });
    await next(
      'namespace create',
      t0,
      (e) => e.type === 'upsert' && e.kind === 'namespace' && e.object.name === team,
    );

    t0 = Date.now();
    const created = await createPod(team, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', labels: { app: 'web' } },
      spec: {
        containers: [{ name: 'httpd', image: 'busybox', ports: [{ name: 'http', containerPort: 80 }] }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const uid = created.body.metadata.uid;
    const isPod = (e: ClusterEvent) => e.type === 'upsert' && e.kind === 'pod' && e.object.uid === uid;
    await next('pod create', t0, isPod);
    const withIp = (await next(
      'pod create → address (scheduler + kubelet simulator included)',
      t0,
      (e) => isPod(e) && e.type === 'upsert' && e.kind === 'pod' && e.object.ips.length > 0,
    )) as Extract<ClusterEvent, { kind: 'pod'; type: 'upsert' }>;
    assert.match(withIp.object.ips[0]!, /^10\.244\./);
    assert.deepEqual(withIp.object.containerPorts, [{ name: 'http', protocol: 'TCP', port: 80 }]);
    assert.equal(withIp.object.namespace, team);

    t0 = Date.now();
    const svc = await adminRest(cp, 'POST', `/api/v1/namespaces/${team}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', labels: { tier: 'front' } },
      spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] },
    });
    assert.equal(svc.status, 201);
    const service = (await next(
      'service create',
      t0,
      (e) =>
        e.type === 'upsert' && e.kind === 'service' && e.object.name === 'web' && e.object.namespace === team,
    )) as Extract<ClusterEvent, { kind: 'service'; type: 'upsert' }>;
    assert.match(service.object.clusterIPs[0]!, /^10\.9[6-9]\./);
    assert.deepEqual(service.object.ports, [{ protocol: 'TCP', port: 80, targetPort: 'http' }]);
    assert.deepEqual(service.object.selector, { app: 'web' });

    const merge = 'application/merge-patch+json';
    let from = events.length;
    t0 = Date.now();
    await adminRest(
      cp,
      'PATCH',
      `/api/v1/namespaces/${team}/pods/web-1`,
      { metadata: { labels: { app: 'api' } } },
      merge,
    );
    await next(
      'pod relabel',
      t0,
      (e) => isPod(e) && e.type === 'upsert' && e.kind === 'pod' && e.object.labels.app === 'api',
      from,
    );

    from = events.length;
    t0 = Date.now();
    await adminRest(
      cp,
      'PATCH',
      `/api/v1/namespaces/${team}`,
      { metadata: { labels: { team: 'b' } } },
      merge,
    );
    await next(
      'namespace relabel',
      t0,
      (e) =>
        e.type === 'upsert' &&
        e.kind === 'namespace' &&
        e.object.name === team &&
        e.object.labels.team === 'b',
      from,
    );

    from = events.length;
    t0 = Date.now();
    await adminRest(
      cp,
      'PATCH',
      `/api/v1/namespaces/${team}/services/web`,
      { spec: { selector: { app: 'api' } } },
      merge,
    );
    await next(
      'service change',
      t0,
      (e) => e.type === 'upsert' && e.kind === 'service' && e.object.selector?.app === 'api',
      from,
    );

    from = events.length;
    t0 = Date.now();
    await adminRest(cp, 'DELETE', `/api/v1/namespaces/${team}/pods/web-1?gracePeriodSeconds=0`);
    await next('pod delete', t0, (e) => e.type === 'delete' && e.kind === 'pod' && e.uid === uid, from);

    from = events.length;
    t0 = Date.now();
    await adminRest(cp, 'DELETE', `/api/v1/namespaces/${team}/services/web`);
    await next(
      'service delete',
      t0,
      (e) => e.type === 'delete' && e.kind === 'service' && e.namespace === team && e.name === 'web',
      from,
    );

    from = events.length;
    t0 = Date.now();
    await dropNamespace(cp, team);
    await next(
      'namespace delete (after its finalizers)',
      t0,
      (e) => e.type === 'delete' && e.kind === 'namespace' && e.name === team,
      from,
    );
    const stats = w.stats();
    assert.deepEqual([stats.namespace.lists, stats.pod.lists, stats.service.lists], [1, 1, 1], 'no re-list');
    await w.stop();
  });

  it('a connection reset under the three watches: they list and watch again and the next pod arrives', async () => {
    const relay: TcpRelay = await tcpRelay(cp);
    try {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'relay', server: relay.url, caData: cp.adminCreds.ca.toString('base64') }],
        users: [{ name: 'agent', token: agentToken }],
        contexts: [{ name: 'relay', cluster: 'relay', user: 'agent' }],
        currentContext: 'relay',
      });
      const w = startWatch(createKubeApi(kc, { timeoutMs: 10_000 }));
      await until('the first resync', () => events.some((x) => x.e.type === 'resync-done'));
      // every watch answered by the server (its connection through the relay) before the reset
      await until('three watches open', () => Object.values(w.stats()).every((s) => s.established >= 1));
      const before = w.stats();
      relay.cut();
      await until('new watches', () =>
        (['namespace', 'pod', 'service'] as const).every(
          (k) => w.stats()[k].established > before[k].established,
        ),
      );
      const ns = await freshNamespace(cp, 'afterreset');
      try {
        const t0 = Date.now();
        await createPod(ns, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'p' },
          spec: { containers: [{ name: 'c', image: 'busybox' }] },
        });
        await next(
          'pod create after a reset',
          t0,
          (e) => e.type === 'upsert' && e.kind === 'pod' && e.object.namespace === ns,
        );
        // a reset is an error: the loop re-lists (with its resync), so nothing missed meanwhile is lost
        assert.ok(w.stats().pod.watches > before.pod.watches);
      } finally {
        await w.stop();
        await dropNamespace(cp, ns);
      }
    } finally {
      relay.close();
    }
  });

  it('the podgate-access Secret: bundles arrive parsed, in rising versions only', async () => {
    const got: AccessBundle[] = [];
    const bundle = (version: number): AccessBundle => ({
      version,
      mode: 'enforce',
      clients: [{ commonName: 'bob.laptop', address: '10.140.0.5' }],
      rules: [
        {
          name: 'a',
          clients: ['10.140.0.5'],
          destinations: [{ kind: 'namespace', names: ['team-a'] }],
          protocol: 'any',
          ports: [],
        },
      ],
      generatedAt: new Date().toISOString(),
    });
    const put = async (b: AccessBundle | string) => {
      const data = {
        'access.json': Buffer.from(typeof b === 'string' ? b : JSON.stringify(b)).toString('base64'),
      };
      const path = `/api/v1/namespaces/${home}/secrets`;
      const body = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'podgate-access', namespace: home },
        data,
      };
      const r = await adminRest(cp, 'PUT', `${path}/podgate-access`, body);
      if (r.status === 404) assert.equal((await adminRest(cp, 'POST', path, body)).status, 201);
    };
    await put(bundle(2));
    const w = new AccessBundleWatch({
      kube: agentKube,
      namespace: home,
      retryMs: 100,
      onBundle: (b) => void got.push(b),
    });
    try {
      await w.start();
      assert.deepEqual(
        got.map((b) => b.version),
        [2],
      );
      const t0 = Date.now();
      await put(bundle(3));
      await until('bundle 3', () => got.length === 2);
      latencies['access bundle Secret → bundle'] = Date.now() - t0;
      await put(bundle(1)); // older: ignored
      await put('{"version": 9, "mode": "everything"}'); // malformed: ignored, named in the log
      await put(bundle(4));
      await until('bundle 4', () => got.length === 3);
      assert.deepEqual(
        got.map((b) => b.version),
        [2, 3, 4],
      );
      assert.deepEqual(got[2]!.rules[0]!.destinations, [{ kind: 'namespace', names: ['team-a'] }]);
    } finally {
      w.stop();
    }
  });

  it('RBAC: the agent reads namespaces, pods and Services cluster-wide and its two Secrets, and can write none of it', async () => {
    const agent = `system:serviceaccount:${home}:podgate-agent`;
    const wrong: string[] = [];
    const yes = [
      ['list', 'namespaces'],
      ['watch', 'namespaces'],
      ['get', 'namespaces/kube-system'],
      ['list', 'pods', '-A'],
      ['watch', 'pods', '-A'],
      ['list', 'services', '-A'],
      ['watch', 'services', '-A'],
      ['get', 'secrets/podgate-access', '-n', home],
      ['watch', 'secrets/podgate-access', '-n', home],
      ['list', 'secrets/podgate-access', '-n', home],
      ['get', 'secrets/podgate-crl', '-n', home],
    ];
    const no = [
      ['create', 'pods', '-n', home],
      ['patch', 'pods', '-n', 'default'],
      ['delete', 'pods', '-n', 'default'],
      ['create', 'pods', '--subresource=exec', '-n', 'default'],
      ['get', 'pods', '--subresource=log', '-n', 'default'],
      ['create', 'services', '-n', 'default'],
      ['patch', 'services', '-n', 'default'],
      ['create', 'namespaces'],
      ['patch', 'namespaces/default'],
      ['delete', 'namespaces/default'],
      ['list', 'secrets', '-A'],
      ['list', 'secrets', '-n', home],
      ['get', 'secrets/podgate-server', '-n', home],
      ['patch', 'secrets/podgate-access', '-n', home],
      ['list', 'configmaps', '-A'],
      ['list', 'endpointslices.discovery.k8s.io', '-A'],
      ['list', 'nodes'],
      ['patch', 'clusterroles.rbac.authorization.k8s.io/podgate-agent-access'],
    ];
    for (const a of yes) if ((await canI(cp, agent, a)) !== 'yes') wrong.push(`should: ${a.join(' ')}`);
    for (const a of no) if ((await canI(cp, agent, a)) !== 'no') wrong.push(`must not: ${a.join(' ')}`);
    assert.deepEqual(wrong, [], wrong.join('\n'));
    // and with its real token: a read works, a write is refused by the API server
    const list = await agentKube.list('v1', 'Namespace', {});
    assert.ok(list && list.items.some((n) => n.metadata.name === home), 'namespace list');
    assert.ok(await agentKube.list('v1', 'Pod', {}), 'cluster-wide pod list');
    const t = tempDir('podgate-agent-kc-');
    try {
      const kubeconfig = writeKubeConfig(tokenKubeConfig(cp, agentToken), join(t.dir, 'agent.kubeconfig'));
      await assert.rejects(
        kubectl(cp, ['label', '-n', 'default', 'service', 'kubernetes', 'x=y'], { kubeconfig }),
        /Forbidden|forbidden/,
      );
      await assert.rejects(
        kubectl(cp, ['delete', 'namespace', home, '--wait=false'], { kubeconfig }),
        /Forbidden|forbidden/,
      );
    } finally {
      t.remove();
    }
  });
});
