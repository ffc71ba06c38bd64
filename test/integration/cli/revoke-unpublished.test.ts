/**
 * A cluster-mode `cert revoke` whose CRL cannot reach the cluster (its API server refuses connections:
 * a port nothing listens on) must not say "published" nor exit 0: the revocation is recorded, but the
 * server accepts the certificate until the CRL reaches it. It says which publisher failed and how to
 * publish again, and exits 1; `crl --publish` does the same while the cluster stays unreachable.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { runCli, tempDir } from '../../helpers/cli.js';

/** A loopback port that was free a moment ago and has no listener now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('CLI: a revoke whose CRL does not reach the cluster says so and exits 1', function () {
  this.timeout(120_000);
  const t = tempDir();
  after(() => t.cleanup());

  it('revoked and signed, "not published to k8s-secret", exit 1; the certificate is revoked in the store', async () => {
    const kubeconfig = join(t.dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: gone`,
        `  cluster:`,
        `    server: https://127.0.0.1:${await closedPort()}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: someone',
        '  user:',
        '    token: not-used-the-server-is-gone',
        'contexts:',
        '- name: gone',
        '  context:',
        '    cluster: gone',
        '    user: someone',
        'current-context: gone',
        '',
      ].join('\n'),
    );
    writeFileSync(join(t.dir, 'admin.pw'), 'admin-password-for-tests\n');
    const env = {
      PODGATE_DATA_DIR: join(t.dir, 'data'),
      PODGATE_VPN_ENDPOINTS: '172.18.12.21',
      PODGATE_ADMIN_PASSWORD_FILE: join(t.dir, 'admin.pw'),
      PODGATE_KUBERNETES_KUBECONFIG: kubeconfig,
      PODGATE_KUBERNETES_NAMESPACE: 'middleware',
      HOME: t.dir,
    };
    const ok = async (...args: string[]) => {
      const r = await runCli(args, env);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      return r;
    };
    await ok('init');
    await ok('cert', 'issue', 'lap', '--owner', 'admin', '--out', join(t.dir, 'lap.ovpn'));

    const revoke = await runCli(['cert', 'revoke', 'lap'], env);
    assert.equal(revoke.code, 1, `exit 1, got ${revoke.code}: ${revoke.stdout}${revoke.stderr}`);
    assert.match(revoke.stdout, /^revoked lap \(serial [0-9A-F]+, reason unspecified\); CRL #\d+ signed$/m);
    assert.doesNotMatch(revoke.stdout + revoke.stderr, /CRL #\d+ published/);
    assert.match(
      revoke.stderr,
      /CRL #\d+ was not published to k8s-secret: read Secret middleware\/podgate-crl: ECONNREFUSED/,
    );
    assert.match(revoke.stderr, /podgate crl --publish/);
    const list = await ok('cert', 'list');
    assert.match(list.stdout, /^\S+\s+lap\s+admin\s+client\s+revoked\s/m, list.stdout);

    const again = await runCli(['crl', '--publish'], env);
    assert.equal(again.code, 1, `crl --publish: ${again.stdout}${again.stderr}`);
    assert.match(again.stderr, /was not published to k8s-secret/);
    assert.match(again.stdout, /-----BEGIN X509 CRL-----/, 'the CRL is still printed');
  });
});
