/**
 * The access watch's shapes (pure), the access bundle parser, and ClusterAccessWatch on the in-process
 * fake ONLY for what a real API server cannot do at a chosen moment: every watch ending, a pod deleted in
 * the gap and history compacted right then (410 Expired on the re-watch), and a 403 on the first lists
 * (the agent's ClusterRoleBinding not there yet). Create, relabel and delete of namespaces, pods and
 * Services, the RBAC and a real connection reset run against the real control plane in
 * test/integration/cluster/access-watch-real.test.ts.
 */
import assert from 'node:assert/strict';
import type { ClusterEvent, PodObject } from '../../../src/access/types.js';
import { accessBundleFromSecret } from '../../../src/cluster/access-bundle-watch.js';
import { ClusterAccessWatch, podShape, serviceShape } from '../../../src/cluster/access-watch.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import type { KubeObject } from '../../../src/cluster/kube-api.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';
import type { JsonObject } from '../../helpers/fake-kube-ssa.js';

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What a consumer keeps, by the ClusterEvent contract: resync-done drops what the resync did not name. */
class View {
  pods = new Map<string, PodObject>();
  namespaces = new Set<string>();
  services = new Set<string>();
  resyncs = 0;
  private seen: Set<string> | undefined;
  apply(e: ClusterEvent): void {
    if (e.type === 'resync-start') this.seen = new Set();
    else if (e.type === 'resync-done') {
      for (const uid of [...this.pods.keys()]) if (!this.seen!.has(`pod:${uid}`)) this.pods.delete(uid);
      for (const n of [...this.namespaces]) if (!this.seen!.has(`namespace:${n}`)) this.namespaces.delete(n);
      for (const s of [...this.services]) if (!this.seen!.has(`service:${s}`)) this.services.delete(s);
      this.seen = undefined;
      this.resyncs++;
    } else if (e.type === 'upsert') {
      if (e.kind === 'pod') {
        this.pods.set(e.object.uid, e.object);
        this.seen?.add(`pod:${e.object.uid}`);
      } else if (e.kind === 'namespace') {
        this.namespaces.add(e.object.name);
        this.seen?.add(`namespace:${e.object.name}`);
      } else {
        this.services.add(`${e.object.namespace}/${e.object.name}`);
        this.seen?.add(`service:${e.object.namespace}/${e.object.name}`);
      }
    } else if (e.kind === 'pod') this.pods.delete(e.uid);
    else if (e.kind === 'namespace') this.namespaces.delete(e.name);
    else this.services.delete(`${e.namespace}/${e.name}`);
  }
}

const pod = (name: string, ip: string, labels: Record<string, string> = {}): JsonObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'team-a', labels },
  spec: { containers: [{ name: 'c', image: 'x' }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});

describe('access watch: shapes', () => {
  const obj = (o: JsonObject) => o as unknown as KubeObject;

  it("a pod keeps no address once it Succeeded or Failed (its address may be another pod's), nor on the host network", () => {
    const running = pod('p', '10.244.1.7', { app: 'x' });
    assert.deepEqual(podShape(obj(running)).ips, ['10.244.1.7']);
    for (const phase of ['Succeeded', 'Failed'])
      assert.deepEqual(podShape(obj({ ...running, status: { phase, podIP: '10.244.1.7' } })).ips, []);
    assert.deepEqual(podShape(obj({ ...running, spec: { hostNetwork: true, containers: [] } })).ips, []);
    assert.deepEqual(podShape(obj({ ...running, status: { phase: 'Pending' } })).ips, []);
  });

  it("a pod's declared ports, for named targetPorts", () => {
    const p = pod('p', '10.244.1.7');
    (p.spec as JsonObject).containers = [
      {
        name: 'c',
        ports: [
          { name: 'http', containerPort: 8080 },
          { containerPort: 53, protocol: 'UDP' },
        ],
      },
    ];
    assert.deepEqual(podShape(obj(p)).containerPorts, [
      { name: 'http', protocol: 'TCP', port: 8080 },
      { protocol: 'UDP', port: 53 },
    ]);
  });

  it('Services: ClusterIPs without "None", ports with targetPort, no selector as null, ExternalName without addresses', () => {
    const base = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'n' } };
    assert.deepEqual(
      serviceShape(
        obj({
          ...base,
          spec: {
            clusterIP: '10.96.0.20',
            clusterIPs: ['10.96.0.20'],
            selector: { app: 'web' },
            ports: [
              { port: 80, targetPort: 'http' },
              { port: 53, protocol: 'UDP', targetPort: 5353 },
            ],
          },
        }),
      ),
      {
        namespace: 'n',
        name: 's',
        labels: {},
        clusterIPs: ['10.96.0.20'],
        ports: [
          { protocol: 'TCP', port: 80, targetPort: 'http' },
          { protocol: 'UDP', port: 53, targetPort: 5353 },
        ],
        selector: { app: 'web' },
      },
    );
    const headless = serviceShape(
      obj({ ...base, spec: { clusterIP: 'None', clusterIPs: ['None'], ports: [] } }),
    );
    assert.deepEqual(headless.clusterIPs, []);
    assert.equal(headless.selector, null);
    assert.deepEqual(
      serviceShape(obj({ ...base, spec: { type: 'ExternalName', externalName: 'db.example' } })).clusterIPs,
      [],
    );
  });
});

describe('access bundle from the podgate-access Secret', () => {
  const good = {
    version: 3,
    mode: 'enforce',
    clients: [{ commonName: 'bob.laptop', address: '10.140.0.5' }],
    rules: [
      {
        name: 'team-a',
        clients: ['10.140.0.5'],
        destinations: [{ kind: 'namespace', names: ['team-a'] }],
        protocol: 'tcp',
        ports: [{ from: 80, to: 80 }],
      },
    ],
    generatedAt: '2026-12-06T00:00:00Z',
  };

  const secret = (value: unknown) =>
    ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'podgate-access' },
      data: {
        'access.json': Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString(
          'base64',
        ),
      },
    }) as unknown as KubeObject;

  it('reads access.json from the Secret and names the first bad field', () => {
    assert.deepEqual(accessBundleFromSecret(secret(good)), good);
    const bad = structuredClone(good) as { rules: { clients: string[] }[] };
    bad.rules[0]!.clients = ['10.140.0.500'];
    assert.throws(() => accessBundleFromSecret(secret(bad)), /clients/);
    assert.throws(() => accessBundleFromSecret(secret({ ...good, mode: 'wide-open' })), /mode/);
    assert.throws(() => accessBundleFromSecret(secret('{')));
    assert.equal(accessBundleFromSecret({ ...secret(good), data: {} }), undefined);
  });
});

describe('ClusterAccessWatch on the fake: faults at a chosen moment', () => {
  let fake: FakeKubeApi;
  let watch: ClusterAccessWatch | undefined;
  let view: View;
  let events: ClusterEvent[];

  before(() => setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent'));
  beforeEach(async () => {
    fake = await FakeKubeApi.start();
    view = new View();
    events = [];
    fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', labels: { team: 'a' } } });
  });
  afterEach(async () => {
    await watch?.stop();
    watch = undefined;
    await fake.close();
  });

  const start = () => {
    watch = new ClusterAccessWatch({ kube: createKubeApi(fake.kubeConfig()), retryMs: 20 });
    watch.start((e) => {
      events.push(e);
      view.apply(e);
    });
    return watch;
  };

  it('410 Expired after a pod was deleted while no watch ran: resync-start … resync-done without it', async () => {
    const gone = fake.seed(pod('gone', '10.244.1.9'));
    fake.seed(pod('stays', '10.244.1.10'));
    const w = start();
    await until(() => view.resyncs === 1, 'first sync');
    assert.deepEqual([...view.pods.values()].map((p) => p.name).sort(), ['gone', 'stays']);
    assert.ok(view.namespaces.has('team-a'));
    // All synchronous: every watch ends, the pod goes, history is compacted before the re-watches.
    fake.endWatches();
    fake.remove(fake.resource('v1', 'Pod'), gone);
    fake.compact();
    await until(() => view.resyncs >= 2 && view.pods.size === 1, 'the re-list');
    assert.deepEqual(
      [...view.pods.values()].map((p) => p.name),
      ['stays'],
    );
    assert.ok(view.namespaces.has('team-a'), 'the other kinds are handed over again, not dropped');
    assert.ok(w.stats().pod.expired >= 1, JSON.stringify(w.stats()));
    assert.ok(
      !events.some((e) => e.type === 'delete'),
      'the deletion was missed by the watches: only the resync could drop it',
    );
  });

  it('403 on the first lists (no ClusterRoleBinding yet): nothing is handed over, then the view arrives once allowed', async () => {
    fake.seed(pod('p', '10.244.1.11'));
    fake.inject({ verb: 'list', kind: 'Pod', status: 403, times: 3 });
    const w = start();
    await until(() => w.stats().pod.errors >= 3, 'three refused lists');
    assert.equal(view.resyncs, 0, 'no partial view without pods');
    await until(() => view.resyncs === 1, 'first sync after the refusals');
    assert.deepEqual(
      [...view.pods.values()].map((p) => p.ips),
      [['10.244.1.11']],
    );
    // a later change is one upsert, a status-only change none
    const before = events.length;
    fake.update('v1', 'Pod', 'p', 'team-a', { metadata: { labels: { app: 'new' } } });
    await until(() => events.length === before + 1, 'relabel upsert');
    fake.update('v1', 'Pod', 'p', 'team-a', { status: { conditions: [{ type: 'Ready', status: 'True' }] } });
    fake.update('v1', 'Pod', 'p', 'team-a', { metadata: { labels: { app: 'newer' } } });
    await until(() => events.length === before + 2, 'second relabel');
    assert.deepEqual(
      events
        .slice(before)
        .map((e) => (e.type === 'upsert' && e.kind === 'pod' ? e.object.labels.app : e.type)),
      ['new', 'newer'],
    );
  });
});
