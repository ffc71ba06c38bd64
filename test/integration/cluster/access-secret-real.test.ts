import assert from 'node:assert/strict';
import type { AccessBundle } from '../../../src/access/types.js';
import { accessVersionOf, applyAccessSecret } from '../../../src/cluster/access-secret-publisher.js';
import { KubeClusterObjects } from '../../../src/cluster/access-objects.js';
import type { KubeApi } from '../../../src/cluster/kube-api.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminKubeApi,
  adminRest,
  dropNamespace,
  freshNamespace,
  realCluster,
} from '../../helpers/real-cluster.js';

const bundle = (version: number, mode: AccessBundle['mode'] = 'enforce'): AccessBundle => ({
  version,
  mode,
  clients: [{ commonName: `dev-${version}`, address: '10.140.0.2' }],
  rules: [
    {
      name: 'r',
      clients: ['10.140.0.2'],
      destinations: [{ kind: 'namespace', names: ['team-a'] }],
      protocol: 'any',
      ports: [],
    },
  ],
  generatedAt: new Date().toISOString(),
});

/** The podgate-access Secret against the real API server: the version order survives racing writers. */
describe('cluster: the podgate-access Secret (real control plane)', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let kube: KubeApi;
  let ns: string;
  const stored = async () =>
    accessVersionOf(
      await kube.get({ apiVersion: 'v1', kind: 'Secret', name: 'podgate-access', namespace: ns }),
    );

  before(async function () {
    this.timeout(180_000);
    setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent');
    cp = await realCluster();
  });
  beforeEach(async () => {
    ns = await freshNamespace(cp, 'access', { team: 'a' });
    kube = adminKubeApi(cp);
  });
  afterEach(async () => dropNamespace(cp, ns));

  it('holds access.json; an older bundle never replaces a newer one, the same version is rewritten', async () => {
    assert.equal((await applyAccessSecret(kube, ns, bundle(5))).written, true);
    assert.equal((await applyAccessSecret(kube, ns, bundle(4))).written, false);
    assert.equal(await stored(), 5);
    assert.equal((await applyAccessSecret(kube, ns, bundle(5, 'open'))).written, true);
    const s = await kube.get({ apiVersion: 'v1', kind: 'Secret', name: 'podgate-access', namespace: ns });
    const data = JSON.parse(
      Buffer.from((s!.data as Record<string, string>)['access.json']!, 'base64').toString('utf8'),
    ) as AccessBundle;
    assert.equal(data.mode, 'open');
    assert.deepEqual(data.clients, bundle(5).clients);
    assert.equal(s!.type, 'Opaque');
  });

  it('writers racing with versions 1..12 leave the highest', async () => {
    await applyAccessSecret(kube, ns, bundle(1));
    const versions = [7, 3, 12, 9, 2, 11, 5, 10, 4, 8, 6];
    await Promise.all(versions.map((v) => applyAccessSecret(adminKubeApi(cp), ns, bundle(v))));
    assert.equal(await stored(), 12);
  });

  it("the manager's cluster view lists namespace labels and Service addresses", async () => {
    await adminRest(cp, 'POST', `/api/v1/namespaces/${ns}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', labels: { tier: 'front' } },
      spec: { ports: [{ port: 443, protocol: 'TCP' }], selector: { app: 'web' } },
    });
    const objects = new KubeClusterObjects(async () => kube);
    const n = (await objects.namespaces()).find((x) => x.name === ns);
    assert.deepEqual(n?.labels.team, 'a');
    const svc = (await objects.services()).find((x) => x.namespace === ns && x.name === 'web');
    assert.equal(svc?.clusterIPs.length, 1);
    assert.deepEqual(svc?.ports, [{ protocol: 'TCP', port: 443, targetPort: 443 }]);
    assert.deepEqual(svc?.labels, { tier: 'front' });
  });
});
