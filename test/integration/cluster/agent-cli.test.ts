/**
 * `podgate agent --cluster` as a real process (what the sidecar runs), with the kubeconfig pointing at the
 * fake API server: it applies the bundle from the podgate-crl Secret (CRL verified against the CA file and
 * written to --crl-file), and while the management socket is missing it reports the revocation as pending
 * in the status ConfigMap. SIGTERM stops it cleanly.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAgentStatus } from '../../../src/cluster/agent-status.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import { crlSecret } from '../../../src/cluster/manifests.js';
import { SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import { CLI, tempDir } from '../../helpers/cli.js';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';
import type { JsonObject } from '../../helpers/fake-kube-ssa.js';
import { makeTestPki, type TestPki } from '../../helpers/openvpn.js';

const NS = 'middleware';

async function until<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('podgate agent --cluster (process) against the fake API server', function () {
  this.timeout(60_000);
  let fake: FakeKubeApi;
  let tmp: { dir: string; cleanup: () => void };
  let pki: TestPki;
  let child: ChildProcess | undefined;
  let stderr = '';

  before(async () => {
    setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent');
    pki = await makeTestPki();
  });
  beforeEach(async () => {
    tmp = tempDir('podgate-agent-cli-');
    fake = await FakeKubeApi.start();
    fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    fake.seed({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'podgate-agent-status', namespace: NS },
    });
  });
  afterEach(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
    await fake.close();
    tmp.cleanup();
  });

  it('applies the Secret bundle to --crl-file and reports pending while openvpn is not there; exits on SIGTERM', async () => {
    const crl1 = pki.nextCrl();
    fake.seed(
      crlSecret(NS, {
        crlNumber: pki.crlNumber,
        crlPem: crl1,
        revoked: [],
        reissuedCommonNames: [],
      }) as unknown as JsonObject,
    );
    const kubeconfig = join(tmp.dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeconfigYaml(), { mode: 0o600 });
    const caFile = join(tmp.dir, 'ca.crt');
    writeFileSync(caFile, pki.caPem);
    const crlFile = join(tmp.dir, 'crl.pem');
    const args = [
      'agent',
      '--cluster',
      '--ca-file',
      caFile,
      '--crl-file',
      crlFile,
      '--management-socket',
      join(tmp.dir, 'none.sock'),
      '--management-password-file',
      join(tmp.dir, 'none.pwd'),
    ];
    child = spawn(process.execPath, [CLI, ...args], {
      env: {
        ...process.env,
        PODGATE_LOG_LEVEL: 'warn',
        PODGATE_KUBERNETES_KUBECONFIG: kubeconfig,
        POD_NAME: 'podgate-openvpn-abc',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    await until(() => /podgate agent watching secret middleware\/podgate-crl/.test(stderr), 'agent start');
    await until(
      () => existsSync(crlFile) && readFileSync(crlFile, 'utf8').trim() === crl1.trim(),
      'first CRL written',
    );

    const client = await pki.issueClient('dave.phone');
    const crl2 = pki.nextCrl(client.serial);
    const kube = createKubeApi(fake.kubeConfig());
    await new SecretCrlPublisher(kube, NS).publish({
      crlNumber: pki.crlNumber,
      crlPem: crl2,
      revoked: [{ serial: client.serial, commonName: 'dave.phone', revokedAt: new Date().toISOString() }],
      reissuedCommonNames: [],
    });
    await until(() => readFileSync(crlFile, 'utf8').trim() === crl2.trim(), 'second CRL written');
    const status = await until(async () => {
      const s = await readAgentStatus(kube, NS);
      return s.pending.length > 0 ? s : undefined;
    }, 'pending report');
    assert.deepEqual(
      status.pending.map((p) => [p.serial, p.commonName, p.crlNumber]),
      [[client.serial, 'dave.phone', pki.crlNumber]],
    );
    assert.match(status.pending[0]!.error, /none\.sock|ENOENT|management/i);

    // A CRL from another CA is refused and changes nothing.
    const other = await makeTestPki();
    await new SecretCrlPublisher(kube, NS).publish({
      crlNumber: 99,
      crlPem: other.nextCrl(),
      revoked: [],
      reissuedCommonNames: [],
    });
    await until(
      () => /not applied/.test(stderr) && /issuer is not this CA/.test(stderr),
      'the agent reporting the refusal',
    );
    assert.equal(readFileSync(crlFile, 'utf8').trim(), crl2.trim());

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child!.once('exit', (c) => r(c)));
    assert.equal(code, 0, stderr);
  });
});
