/**
 * The real CLI (`node dist/src/cli.js`) against the fake API server: k8s discover / manifests / deploy /
 * status, exit codes, and the generated YAML applied with the real `kubectl apply -f DIR` when kubectl
 * is installed. kubectl runs with --validate=false: the fake serves no OpenAPI documents (the schema
 * check is the kubernetes-models test in test/unit/cluster/manifests.test.ts).
 */
import assert from 'node:assert/strict';
import { requireBinaries } from '../../cluster/binaries.js';
import { execFile } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';
import type { JsonObject } from '../../helpers/fake-kube-ssa.js';
import { runCli, tempDir } from '../../helpers/cli.js';

const run = promisify(execFile);
const NS = 'middleware';

async function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(requireBinaries(['kubectl']).kubectl, args, { encoding: 'utf8', timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : 127,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? String(e),
    };
  }
}

describe('CLI k8s commands against the fake API server', function () {
  this.timeout(120_000);
  let fake: FakeKubeApi;
  let tmp: { dir: string; cleanup: () => void };
  let env: NodeJS.ProcessEnv;
  const cli = (args: string[]) => runCli(['--data-dir', join(tmp.dir, 'data'), ...args], env);

  beforeEach(async () => {
    tmp = tempDir('podgate-k8s-cli-');
    fake = await FakeKubeApi.start();
    for (const f of [
      'kubeadm-config-v1beta3-single-stack.json',
      'node-kubeadm-kind-single-stack-v1.21.json',
      'service-kube-dns-kubeadm.json',
      'servicecidr-kubernetes-networking-v1.json',
    ]) {
      fake.seedSample(f);
    }
    const kubeconfig = join(tmp.dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeconfigYaml(), { mode: 0o600 });
    env = { PODGATE_KUBERNETES_KUBECONFIG: kubeconfig };
  });
  afterEach(async () => {
    await fake.close();
    tmp.cleanup();
  });

  it('discover prints each range with its source; --json stores the same data', async () => {
    const r = await cli(['k8s', 'discover']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pod CIDRs: +10\.244\.0\.0\/16 +\[kubeadm-config networking.podSubnet\]/);
    assert.match(
      r.stdout,
      /service CIDRs: +10\.96\.0\.0\/12 +\[ServiceCIDR objects \(networking.k8s.io\/v1\)\]/,
    );
    assert.match(r.stdout, /cluster DNS: +10\.96\.0\.10 +domain cluster.local/);
    assert.match(r.stdout, /node IPs: +172\.18\.0\.2/);
    const j = await cli(['--json', 'k8s', 'discover']);
    assert.deepEqual(JSON.parse(j.stdout).podCidrs, ['10.244.0.0/16']);
  });

  it("discover exits 2 naming both ranges when Cilium's default pool overlaps the client subnet", async () => {
    fake.seedSample('cilium-config-cluster-pool-trimmed.json');
    const r = await cli(['k8s', 'discover']);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /vpn.clientSubnet 10\.140\.0\.0\/16 overlaps pod CIDR \(cilium-config cluster-pool \(kube-system\)\) 10\.0\.0\.0\/8/,
    );
  });

  it('deploy twice: the second run reports no change; status shows pods, endpoints and the agent', async () => {
    const first = await cli(['k8s', 'deploy']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Namespace middleware created/);
    assert.match(first.stdout, /Deployment middleware\/podgate-openvpn created/);
    assert.match(first.stdout, /deploy: 10 object\(s\) changed, rollout ready/);
    const second = await cli(['k8s', 'deploy']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal((second.stdout.match(/ unchanged$/gm) ?? []).length, 10, second.stdout);
    assert.match(second.stdout, /deploy: no change/);
    const st = await cli(['k8s', 'status']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /deployment middleware\/podgate-openvpn: 1\/1 ready/);
    assert.match(st.stdout, /service: NodePort port 30030 nodePort 30030\/UDP/);
    assert.match(st.stdout, /endpoints: 10\.244\.1\.5:30030\/UDP/);
    assert.match(st.stdout, /agent: no CRL applied yet/);
  });

  it('a 403 mid-deploy exits 1 naming the object; the next deploy completes', async () => {
    fake.inject({ verb: 'apply', kind: 'Role', status: 403 });
    const r = await cli(['k8s', 'deploy']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /deploy stopped at Role middleware\/podgate-agent \(3\/10\).*403 Forbidden/);
    assert.match(r.stderr, /an admin grants podgate's rights with `podgate k8s rbac --namespace middleware/);
    const again = await cli(['k8s', 'deploy']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Role middleware\/podgate-agent created/);
  });

  it('cert revoke publishes the new CRL to the podgate-crl Secret (kubeconfig configured = cluster mode)', async () => {
    assert.equal((await cli(['k8s', 'deploy'])).code, 0);
    assert.equal((await cli(['user', 'add', 'alice'])).code, 0);
    const issue = await cli([
      'cert',
      'issue',
      'alice.laptop',
      '--owner',
      'alice',
      '--out',
      join(tmp.dir, 'alice.ovpn'),
    ]);
    assert.equal(issue.code, 0, issue.stderr);
    const before = (fake.getObject('v1', 'Secret', 'podgate-crl', NS)!.metadata as JsonObject)
      .resourceVersion;
    const revoke = await cli(['cert', 'revoke', 'alice.laptop', '--reason', 'keyCompromise']);
    assert.equal(revoke.code, 0, revoke.stderr);
    const secret = fake.getObject('v1', 'Secret', 'podgate-crl', NS)!;
    assert.notEqual((secret.metadata as JsonObject).resourceVersion, before);
    const bundle = JSON.parse(
      Buffer.from(String((secret.data as JsonObject)['revocations.json']), 'base64').toString('utf8'),
    ) as {
      revoked: { commonName: string }[];
    };
    assert.deepEqual(
      bundle.revoked.map((r) => r.commonName),
      ['alice.laptop'],
    );
  });

  it('manifests --out writes private files that `kubectl apply -f DIR` applies, and re-applies unchanged', async function () {
    await cli(['k8s', 'discover']);
    const out = join(tmp.dir, 'manifests');
    const r = await cli(['k8s', 'manifests', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(out).sort();
    assert.equal(files.length, 10);
    for (const f of files) assert.equal(statSync(join(out, f)).mode & 0o777, 0o600, f);
    const version = await kubectl(['version', '--client']);
    assert.equal(version.code, 0, `the built kubectl (npm test builds it): ${version.stderr}`);
    const kc = env.PODGATE_KUBERNETES_KUBECONFIG!;
    const first = await kubectl(['--kubeconfig', kc, 'apply', '--validate=false', '-f', out]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /deployment.apps\/podgate-openvpn created/);
    assert.match(first.stdout, /secret\/podgate-crl created/);
    assert.match(first.stdout, /role.rbac.authorization.k8s.io\/podgate-agent created/);
    const dep = fake.getObject('apps/v1', 'Deployment', 'podgate-openvpn', NS)!;
    assert.equal(((dep.spec as JsonObject).strategy as JsonObject).type, 'Recreate');
    const second = await kubectl(['--kubeconfig', kc, 'apply', '--validate=false', '-f', out]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal((second.stdout.match(/ unchanged$/gm) ?? []).length, 10, second.stdout);
  });
});
