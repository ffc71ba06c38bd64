/**
 * Cluster mode on the real control plane, through the real CLI: restore reads the podgate-crl
 * Secret's CRL number (or refuses naming --crl-number-above), a publish the Secret refuses for a higher
 * number is an audited error shown by `k8s status`, and two managers with two CAs in one namespace do
 * not replace each other's objects (podgate.io/ca-key-id) unless one takes over deliberately.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFromSecret } from '../../../src/cluster/secret-watch-source.js';
import { OWNER_ANNOTATION, ownerOf } from '../../../src/cluster/ownership.js';
import type { KubeApi, KubeObject } from '../../../src/cluster/kube-api.js';
import { openStore } from '../../../src/store/index.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { runCli, tempDir } from '../../helpers/cli.js';
import {
  adminKubeApi,
  dropNamespace,
  ensureKubeDns,
  freshNamespace,
  realCluster,
} from '../../helpers/real-cluster.js';

let nextNodePort = 30700;

describe('cluster mode: restore, refused publishes and two managers (real API server)', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let tmp: { dir: string; cleanup: () => void };
  let env: NodeJS.ProcessEnv;
  let ns: string;
  let kube: KubeApi;
  const cli = (dataDir: string, args: string[], more: NodeJS.ProcessEnv = {}) =>
    runCli(['--data-dir', join(tmp.dir, dataDir), ...args], { ...env, ...more });
  const ok = async (dataDir: string, args: string[], more: NodeJS.ProcessEnv = {}) => {
    const r = await cli(dataDir, args, more);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r;
  };
  const get = (kind: string, name: string, apiVersion = 'v1') =>
    kube.get({ apiVersion, kind, name, namespace: ns }) as Promise<KubeObject>;
  const secretNumber = async () => bundleFromSecret(await get('Secret', 'podgate-crl'))!.crlNumber;
  const issue = (dataDir: string, name: string) =>
    ok(dataDir, [
      'cert',
      'issue',
      name,
      '--owner',
      'alice',
      '--out',
      join(tmp.dir, `${dataDir}-${name}.ovpn`),
    ]);
  const storeCrlNumber = async (dataDir: string) => {
    const s = openStore(join(tmp.dir, dataDir));
    try {
      return (await s.getCrl())!.number;
    } finally {
      await s.close();
    }
  };

  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
    await ensureKubeDns(cp);
  });
  beforeEach(async () => {
    tmp = tempDir('podgate-k8s-owner-');
    ns = await freshNamespace(cp, 'owner');
    kube = adminKubeApi(cp);
    env = {
      PODGATE_KUBERNETES_KUBECONFIG: cp.kubeconfig,
      PODGATE_KUBERNETES_NAMESPACE: ns,
      PODGATE_KUBERNETES_NODE_PORT: String(nextNodePort++),
      PODGATE_KUBERNETES_NODE_PORT_RANGE: '30000-31999',
      PODGATE_CA_KEY_TYPE: 'ec-p384',
      PODGATE_VPN_ENDPOINTS: '172.18.12.21',
    };
    writeFileSync(join(tmp.dir, 'backup.pass'), 'a long backup passphrase\n');
  });
  afterEach(async () => {
    await dropNamespace(cp, ns);
    tmp.cleanup();
  });

  it('restore reads the Secret: the restored CRL is numbered above it and the next revocation is published', async () => {
    await ok('a', ['user', 'add', 'alice']);
    for (const n of ['a1', 'a2', 'a3', 'a4']) await issue('a', n);
    await ok('a', ['cert', 'revoke', 'a1']);
    await ok('a', [
      'backup',
      '--out',
      join(tmp.dir, 'b.pgbackup'),
      '--passphrase-file',
      join(tmp.dir, 'backup.pass'),
    ]);
    await ok('a', ['cert', 'revoke', 'a2']);
    await ok('a', ['cert', 'revoke', 'a3']);
    const seen = await secretNumber();
    assert.equal(seen, await storeCrlNumber('a'));
    const r = await ok('b', [
      'restore',
      join(tmp.dir, 'b.pgbackup'),
      '--passphrase-file',
      join(tmp.dir, 'backup.pass'),
    ]);
    assert.match(r.stderr, new RegExp(`podgate-crl Secret holds CRL #${seen}`));
    assert.equal(await storeCrlNumber('b'), seen + 1, 'renumbered above the Secret');
    // a2 was revoked after the backup: revoking it again from the restored manager reaches the Secret
    await ok('b', ['cert', 'revoke', 'a2']);
    const after = bundleFromSecret(await get('Secret', 'podgate-crl'))!;
    assert.equal(after.crlNumber, seen + 2);
    assert.ok(after.revoked.some((x) => x.commonName === 'a2'));
  });

  it('restore exits 2 naming --crl-number-above when the cluster cannot be asked; writes nothing', async () => {
    await ok('a', ['user', 'add', 'alice']);
    await ok('a', [
      'backup',
      '--out',
      join(tmp.dir, 'b.pgbackup'),
      '--passphrase-file',
      join(tmp.dir, 'backup.pass'),
    ]);
    const dead = join(tmp.dir, 'dead.kubeconfig');
    writeFileSync(
      dead,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]',
        'users: [{name: u, user: {token: x}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    const r = await cli(
      'b',
      ['restore', join(tmp.dir, 'b.pgbackup'), '--passphrase-file', join(tmp.dir, 'backup.pass')],
      {
        PODGATE_KUBERNETES_KUBECONFIG: dead,
      },
    );
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--crl-number-above/);
    const { existsSync } = await import('node:fs');
    assert.ok(!existsSync(join(tmp.dir, 'b')), 'nothing restored');
  });

  it('a publish the Secret refuses for a higher number is an audited error, shown by k8s status', async () => {
    await ok('a', ['user', 'add', 'alice']);
    for (const n of ['a1', 'a2', 'a3']) await issue('a', n);
    await ok('a', [
      'backup',
      '--out',
      join(tmp.dir, 'b.pgbackup'),
      '--passphrase-file',
      join(tmp.dir, 'backup.pass'),
    ]);
    await ok('a', ['cert', 'revoke', 'a1']);
    await ok('a', ['cert', 'revoke', 'a2']);
    const seen = await secretNumber();
    // told the wrong number on purpose: the restored CRL stays below the Secret's
    await ok('b', ['restore', join(tmp.dir, 'b.pgbackup'), '--passphrase-file', join(tmp.dir, 'backup.pass'), '--crl-number-above', '0']); // prettier-ignore
    // the revocation is recorded but not in force: the CLI says so and exits 1
    const refusedRevoke = await cli('b', ['cert', 'revoke', 'a3']);
    assert.equal(refusedRevoke.code, 1, refusedRevoke.stdout + refusedRevoke.stderr);
    assert.match(refusedRevoke.stdout, /^revoked a3 .*; CRL #\d+ signed$/m);
    assert.match(refusedRevoke.stderr, new RegExp(`was not published to k8s-secret: .*holds #${seen}`));
    assert.equal(await secretNumber(), seen, 'the Secret kept its higher number');
    const store = openStore(join(tmp.dir, 'b'));
    try {
      const rows = (await store.listAudit({ action: 'crl.publish' })).filter((x) => x.result === 'error');
      assert.equal(rows.length, 1, 'the refused publish is audited as an error');
      assert.match(JSON.stringify(rows[0]!.details), new RegExp(`holds #${seen}`));
    } finally {
      await store.close();
    }
    const st = await ok('b', ['k8s', 'status']);
    assert.match(st.stdout, new RegExp(`CRL Secret: ERROR: holds CRL #${seen}, above this manager's #\\d+`));
    assert.match(st.stdout, new RegExp(`--crl-number-above ${seen}`));
  });

  it('two managers with two CAs: the second refuses to deploy or publish over the first, until --take-over', async () => {
    await ok('m1', ['k8s', 'deploy']);
    const m1Key = ownerOf(await get('Secret', 'podgate-server'))!;
    assert.match(m1Key, /^[0-9a-f]{40,}$/);
    for (const [kind, name, v] of [
      ['Secret', 'podgate-crl', 'v1'],
      ['ConfigMap', 'podgate-openvpn', 'v1'],
      ['Deployment', 'podgate-openvpn', 'apps/v1'],
    ] as const)
      assert.equal(ownerOf(await get(kind, name, v)), m1Key, `${kind} ${name} marked`);
    const serverBefore = (await get('Secret', 'podgate-server')).metadata.resourceVersion;

    const refused = await cli('m2', ['k8s', 'deploy']);
    assert.notEqual(refused.code, 0, refused.stdout);
    assert.match(refused.stderr, new RegExp(`${OWNER_ANNOTATION}=${m1Key}`));
    assert.match(refused.stderr, /--take-over/);
    assert.equal(
      (await get('Secret', 'podgate-server')).metadata.resourceVersion,
      serverBefore,
      'not replaced',
    );

    await ok('m2', ['user', 'add', 'alice']);
    await issue('m2', 'm2dev');
    const crlBefore = (await get('Secret', 'podgate-crl')).metadata.resourceVersion;
    const refusedRevoke = await cli('m2', ['cert', 'revoke', 'm2dev']);
    assert.equal(refusedRevoke.code, 1, 'a revoke that did not reach the server exits 1');
    assert.match(refusedRevoke.stderr, /was not published to k8s-secret: .*--take-over/);
    assert.equal((await get('Secret', 'podgate-crl')).metadata.resourceVersion, crlBefore, "m1's CRL stays");
    const m2store = openStore(join(tmp.dir, 'm2'));
    try {
      const rows = (await m2store.listAudit({ action: 'crl.publish' })).filter((x) => x.result === 'error');
      // every publish of m2 (its first CRL, the revocation) was refused and audited
      assert.ok(rows.length >= 1);
      for (const row of rows) assert.match(JSON.stringify(row.details), new RegExp(OWNER_ANNOTATION));
    } finally {
      await m2store.close();
    }
    const st = await ok('m2', ['k8s', 'status']);
    assert.match(st.stdout, new RegExp(`CRL Secret: ERROR: marked ${OWNER_ANNOTATION}=${m1Key}`));

    const taken = await ok('m2', ['k8s', 'deploy', '--take-over']);
    assert.match(taken.stdout, /taking over/);
    const m2Key = ownerOf(await get('Secret', 'podgate-server'))!;
    assert.notEqual(m2Key, m1Key);
    assert.equal(ownerOf(await get('Secret', 'podgate-crl')), m2Key);
    assert.equal(
      await secretNumber(),
      await storeCrlNumber('m2'),
      "m2's CRL replaced m1's whatever its number",
    );
    // and now the first manager is the foreign one
    await ok('m1', ['user', 'add', 'bob']);
    const revoke = await ok('m1', ['--json', 'cert', 'list']);
    assert.ok(revoke.stdout.length > 0);
    const again = await cli('m1', ['k8s', 'deploy']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, new RegExp(`${OWNER_ANNOTATION}=${m2Key}`));
  });
});
