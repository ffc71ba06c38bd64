/**
 * `podgate agent --cluster` as a real process (what the sidecar runs), with the kubeconfig pointing at the
 * real control plane (test/helpers/real-cluster.ts), in a namespace of its own: it applies the bundle from the podgate-crl Secret (CRL verified against the CA file and
 * written to --crl-file), and while the management socket is missing it reports the revocation as pending
 * in the status ConfigMap. SIGTERM stops it cleanly.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAgentStatus } from '../../../src/cluster/agent-status.js';
import { crlSecret } from '../../../src/cluster/manifests.js';
import { applyCrlSecret, SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import { CLI, tempDir } from '../../helpers/cli.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminKubeApi,
  adminRest,
  dropNamespace,
  freshNamespace,
  realCluster,
} from '../../helpers/real-cluster.js';
import { makeTestPki, type TestPki } from '../../helpers/openvpn.js';

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

describe('podgate agent --cluster (process) against the real API server', function () {
  this.timeout(60_000);
  let cp: ControlPlane;
  let NS: string;
  let tmp: { dir: string; cleanup: () => void };
  let pki: TestPki;
  let child: ChildProcess | undefined;
  let stderr = '';

  before(async function () {
    this.timeout(180_000);
    setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent');
    pki = await makeTestPki();
    cp = await realCluster();
  });
  beforeEach(async () => {
    tmp = tempDir('podgate-agent-cli-');
    NS = await freshNamespace(cp, 'agent-cli');
    await adminRest(cp, 'POST', `/api/v1/namespaces/${NS}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'podgate-agent-status', namespace: NS },
    });
  });
  afterEach(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
    await dropNamespace(cp, NS);
    tmp.cleanup();
  });

  it('applies the Secret bundle to --crl-file and reports pending while openvpn is not there; exits on SIGTERM', async () => {
    const crl1 = pki.nextCrl();
    const created = await adminRest(
      cp,
      'POST',
      `/api/v1/namespaces/${NS}/secrets`,
      crlSecret(NS, { crlNumber: pki.crlNumber, crlPem: crl1, revoked: [], reissuedCommonNames: [] }),
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
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
        PODGATE_KUBERNETES_KUBECONFIG: cp.kubeconfig,
        PODGATE_KUBERNETES_NAMESPACE: NS,
        POD_NAME: 'podgate-openvpn-abc',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    await until(
      () => new RegExp(`podgate agent watching secret ${NS}/podgate-crl`).test(stderr),
      'agent start',
    );
    await until(
      () => existsSync(crlFile) && readFileSync(crlFile, 'utf8').trim() === crl1.trim(),
      'first CRL written',
    );

    const client = await pki.issueClient('dave.phone');
    const crl2 = pki.nextCrl(client.serial);
    const kube = adminKubeApi(cp);
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

    // A CRL from another CA (a manager that took the namespace over: the publisher refuses it otherwise)
    // is refused by the agent and changes nothing.
    const other = await makeTestPki();
    const foreign = { crlNumber: 99, crlPem: other.nextCrl(), revoked: [], reissuedCommonNames: [] };
    await assert.rejects(new SecretCrlPublisher(kube, NS).publish(foreign), /podgate\.io\/ca-key-id=/);
    await applyCrlSecret(kube, crlSecret(NS, foreign), { takeOver: true });
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
