/**
 * The real-node suites' overlay on the manager (test/cluster/node/manager-overlay.ts), built with the
 * real `kubectl kustomize` without a node: on `k8s/` and on `k8s-postgres/` it changes the image (local,
 * never pulled) and the data volume only, and keeps everything the base or the PostgreSQL overlay sets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { requireBinaries } from '../../cluster/binaries.js';
import { writeManagerOverlay } from '../../cluster/node/manager-overlay.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = { kind: string; metadata: { name: string }; [k: string]: any };
const IMAGE = 'localhost/podgate:test-abc123';

describe('the real-node suites’ manager overlay (kubectl kustomize)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-overlay-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function build(sub: string, options: Parameters<typeof writeManagerOverlay>[3]) {
    const { kubectl } = requireBinaries(['kubectl']);
    const overlay = writeManagerOverlay(join(dir, sub), process.cwd(), IMAGE, options);
    const { stdout } = await promisify(execFile)(kubectl, ['kustomize', overlay], { encoding: 'utf8' });
    const objects = parseAllDocuments(stdout).map((d) => d.toJSON() as Obj);
    const dep = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'podgate-manager')!;
    const c = dep.spec.template.spec.containers[0];
    const env = Object.fromEntries(
      (c.env as { name: string; value?: string }[]).map((e) => [e.name, e.value ?? 'from']),
    );
    return { objects, dep, c, env };
  }

  it('on k8s/: the local image never pulled, an emptyDir instead of the claim', async () => {
    const { objects, dep, c, env } = await build('base', {});
    assert.equal(objects.filter((o) => o.kind === 'PersistentVolumeClaim').length, 0);
    assert.equal(dep.spec.replicas, 1);
    assert.equal(c.image, IMAGE);
    assert.equal(c.imagePullPolicy, 'Never');
    assert.equal(env.PODGATE_KUBERNETES_IMAGE, IMAGE);
    assert.deepEqual(
      dep.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'data'),
      { name: 'data', emptyDir: {} },
    );
  });

  it('on k8s-postgres/: 2 replicas and the store settings kept, the image and extra variables added', async () => {
    const { objects, dep, c, env } = await build('pg', {
      base: 'k8s-postgres',
      env: { PODGATE_DEVICES_ISSUES_PER_HOUR: '10000' },
    });
    assert.equal(objects.filter((o) => o.kind === 'PersistentVolumeClaim').length, 0);
    assert.ok(objects.some((o) => o.kind === 'Role' && o.metadata.name === 'podgate-manager-lease'));
    assert.equal(dep.spec.replicas, 2);
    assert.equal(dep.spec.strategy.type, 'RollingUpdate');
    assert.equal(c.image, IMAGE);
    assert.equal(c.imagePullPolicy, 'Never');
    assert.equal(env.PODGATE_KUBERNETES_IMAGE, IMAGE);
    assert.equal(env.PODGATE_DEVICES_ISSUES_PER_HOUR, '10000');
    assert.match(env.PODGATE_STORE_URL!, /^postgres:\/\/podgate@podgate-postgres\.podgate\.svc:5432\//);
    assert.equal(env.PODGATE_CA_PASSPHRASE_FILE, '/etc/podgate/ca/passphrase');
    assert.equal(env.PODGATE_DATA_DIR, '/data/podgate');
    assert.deepEqual(
      dep.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'data'),
      { name: 'data', emptyDir: {} },
    );
  });
});
