/**
 * "unchanged" under a real mutating admission webhook. The test registers a MutatingWebhookConfiguration
 * on the real API server (url clientConfig to an HTTPS server on 127.0.0.1 that this test runs, its
 * certificate in caBundle; the API server runs in the machine's namespace, so loopback reaches it) that
 * stamps every Deployment write in the test's namespace, as admission controllers that record who or when
 * do. Each apply then gets a new resourceVersion even when podgate changed nothing: deploy must still say
 * "no change", and still say "configured" when podgate's own config changes. The webhook configuration is
 * removed afterwards (the control plane is shared by the run).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../../helpers/cli.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminRest,
  dropNamespace,
  ensureKubeDns,
  realCluster,
  tempDir,
  uniqueName,
} from '../../helpers/real-cluster.js';

const STAMP = 'webhook.podgate.test/stamp';
const INJECTED = 'webhook.podgate.test/injected';
const esc = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

interface Review {
  request: {
    uid: string;
    object: {
      metadata: { annotations?: Record<string, string> };
      spec?: { template?: { metadata?: { labels?: Record<string, string> } } };
    };
  };
}

/** The webhook: a new stamp on every write (a counter), and a constant label on the pod template. */
function startWebhook(
  key: string,
  cert: string,
): Promise<{ server: Server; port: number; calls: () => number }> {
  let calls = 0;
  const server = createServer({ key, cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Review;
      calls += 1;
      const obj = review.request.object;
      const patch: unknown[] = [
        obj.metadata.annotations
          ? { op: 'add', path: `/metadata/annotations/${esc(STAMP)}`, value: String(calls) }
          : { op: 'add', path: '/metadata/annotations', value: { [STAMP]: String(calls) } },
      ];
      if (obj.spec?.template?.metadata?.labels) {
        patch.push({ op: 'add', path: `/spec/template/metadata/labels/${esc(INJECTED)}`, value: 'true' });
      }
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: {
            uid: review.request.uid,
            allowed: true,
            patchType: 'JSONPatch',
            patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
          },
        }),
      );
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as AddressInfo).port, calls: () => calls }),
    ),
  );
}

describe('deploy under a real mutating admission webhook', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let tmp: ReturnType<typeof tempDir>;
  let webhook: Awaited<ReturnType<typeof startWebhook>>;
  const ns = uniqueName('webhook');
  const hookName = `podgate-test-stamp-${ns}`;
  const hookPath = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${hookName}`;

  const deploy = (dnsServers: string[] = []) => {
    const config = join(tmp.dir, 'podgate.json');
    writeFileSync(
      config,
      JSON.stringify({
        vpn: { endpoints: [], routes: { pods: [], services: [] }, dns: { servers: dnsServers } },
        kubernetes: {
          kubeconfig: cp.kubeconfig,
          namespace: ns,
          nodePort: 31900,
          nodePortRange: '30000-31999',
        },
      }),
    );
    return runCli(['--config', config, '--data-dir', join(tmp.dir, 'data'), 'k8s', 'deploy']);
  };
  const deployment = async () =>
    (
      await adminRest<{
        metadata: { resourceVersion: string; annotations?: Record<string, string> };
        spec: { template: { metadata: { labels: Record<string, string> } } };
      }>(cp, 'GET', `/apis/apps/v1/namespaces/${ns}/deployments/podgate-openvpn`)
    ).body;
  const action = (stdout: string, object: string) =>
    new RegExp(`^${object} (created|configured|unchanged)$`, 'm').exec(stdout)?.[1];

  before(async function () {
    this.timeout(240_000);
    cp = await realCluster();
    await ensureKubeDns(cp);
    tmp = tempDir('podgate-webhook-');
    const key = join(tmp.dir, 'tls.key');
    const crt = join(tmp.dir, 'tls.crt');
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', crt,
    ]); // prettier-ignore
    const cert = readFileSync(crt, 'utf8');
    webhook = await startWebhook(readFileSync(key, 'utf8'), cert);
    const created = await adminRest(cp, 'POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: hookName },
      webhooks: [
        {
          name: 'stamp.podgate.test',
          clientConfig: { url: `https://127.0.0.1:${webhook.port}/mutate`, caBundle: Buffer.from(cert).toString('base64') },
          rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['deployments'], scope: 'Namespaced' }],
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          failurePolicy: 'Fail',
          timeoutSeconds: 5,
        },
      ],
    }); // prettier-ignore
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // The API server loads webhook configurations asynchronously: wait until a dry-run write is stamped.
    await adminRest(cp, 'POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } },
    });
    const probe = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'probe' },
      spec: {
        selector: { matchLabels: { app: 'probe' } },
        template: {
          metadata: { labels: { app: 'probe' } },
          spec: { containers: [{ name: 'c', image: 'x' }] },
        },
      },
    };
    for (let i = 0; ; i++) {
      const dry = await adminRest<{ metadata?: { annotations?: Record<string, string> } }>(
        cp,
        'POST',
        `/apis/apps/v1/namespaces/${ns}/deployments?dryRun=All`,
        probe,
      );
      if (dry.body.metadata?.annotations?.[STAMP]) break;
      if (i > 100) throw new Error(`the webhook never ran: ${JSON.stringify(dry.body)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  after(async () => {
    if (cp) {
      await adminRest(cp, 'DELETE', hookPath);
      await dropNamespace(cp, ns);
    }
    webhook?.server.close();
    tmp?.remove();
  });

  it('a second deploy says "no change" although the webhook gave the Deployment a new resourceVersion; a config change still reports "configured"', async () => {
    const first = await deploy();
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.equal(action(first.stdout, `Deployment ${ns}/podgate-openvpn`), 'created', first.stdout);
    const afterFirst = await deployment();
    // the webhook really ran on podgate's write
    assert.ok(afterFirst.metadata.annotations?.[STAMP], JSON.stringify(afterFirst.metadata));
    assert.equal(afterFirst.spec.template.metadata.labels[INJECTED], 'true');

    const callsBefore = webhook.calls();
    const second = await deploy();
    assert.equal(second.code, 0, second.stdout + second.stderr);
    const afterSecond = await deployment();
    // the webhook stamped the re-apply, so the object did change on the server...
    assert.ok(webhook.calls() > callsBefore);
    assert.notEqual(afterSecond.metadata.resourceVersion, afterFirst.metadata.resourceVersion);
    assert.notEqual(afterSecond.metadata.annotations?.[STAMP], afterFirst.metadata.annotations?.[STAMP]);
    // ...but nothing podgate manages did
    assert.equal(action(second.stdout, `Deployment ${ns}/podgate-openvpn`), 'unchanged', second.stdout);
    assert.match(second.stdout, /rollout unchanged, 1\/1 ready/, second.stdout);
    // no new ReplicaSet: the pod was not rolled
    assert.equal(afterSecond.metadata.annotations?.['deployment.kubernetes.io/revision'], '1');
    assert.match(second.stdout, /^deploy: no change$/m, second.stdout);

    const third = await deploy(['10.96.0.53']);
    assert.equal(third.code, 0, third.stdout + third.stderr);
    assert.equal(action(third.stdout, `ConfigMap ${ns}/podgate-openvpn`), 'configured', third.stdout);
    assert.equal(action(third.stdout, `Deployment ${ns}/podgate-openvpn`), 'configured', third.stdout);
    assert.equal(action(third.stdout, `Secret ${ns}/podgate-server`), 'unchanged', third.stdout);
    assert.match(third.stdout, /^deploy: 2 object\(s\) changed, rollout ready$/m, third.stdout);
    assert.equal((await deployment()).metadata.annotations?.['deployment.kubernetes.io/revision'], '2');
  });
});
