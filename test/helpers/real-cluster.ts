/**
 * One real Kubernetes control plane (test/cluster/control-plane.ts: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler built from upstream v1.34, two registered nodes with a kubelet
 * simulator) shared by every cluster test of a mocha run: started on first use, stopped by a root
 * after-all hook (and killed on exit if mocha dies first). Missing binaries fail the test, in CI and
 * elsewhere: `npm test` builds them first (scripts/build-test-cluster.mjs).
 *
 * Tests share the cluster, so each works in namespaces of its own (`freshNamespace`) and removes what it
 * creates in shared places (kube-system, cluster-scoped objects).
 */
import { execFile } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { createKubeApi } from '../../src/cluster/kube-client.js';
import type { KubeApi } from '../../src/cluster/kube-api.js';
import { ControlPlane } from '../cluster/control-plane.js';
import { rest, restOk, type RestResponse } from '../cluster/kube-rest.js';

/** Not Kubernetes' default, like a cluster that set --service-node-port-range: podgate must follow it. */
export const NODE_PORT_RANGE = '30000-31999';

let shared: Promise<ControlPlane> | undefined;
let started: ControlPlane | undefined;

/** The shared control plane, started on first call (~10 s with cached binaries). */
export function realCluster(): Promise<ControlPlane> {
  shared ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podgate-k8s-'));
    const cp = new ControlPlane({ dir, nodePortRange: NODE_PORT_RANGE });
    started = cp;
    try {
      await cp.start();
    } catch (err) {
      await cp.stop({ removeDir: true });
      throw err;
    }
    return cp;
  })();
  return shared;
}

// Root-level hook (registered when a test file first imports this module): stop the shared cluster.
after(async function () {
  this.timeout(30_000);
  if (started) await started.stop({ removeDir: true });
  started = undefined;
  shared = undefined;
});

/** A KubeConfig for the admin (system:masters) client certificate. */
export function adminKubeConfig(cp: ControlPlane): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  return kc;
}

/** podgate's real KubeApi (kube-client.ts) as the cluster admin. */
export function adminKubeApi(cp: ControlPlane, timeoutMs = 10_000): KubeApi {
  return createKubeApi(adminKubeConfig(cp), { timeoutMs });
}

let counter = 0;
/** A namespace name unique within the run (created by the caller or by podgate). */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid % 10000}-${counter}`;
}

/** Creates a namespace (optionally labelled) and returns its name. */
export async function freshNamespace(
  cp: ControlPlane,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const name = uniqueName(prefix);
  await restOk(cp.adminCreds, 'POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels },
  });
  return name;
}

/** Admin REST call on the shared cluster. */
export function adminRest<T = unknown>(
  cp: ControlPlane,
  method: string,
  path: string,
  body?: unknown,
  contentType?: string,
): Promise<RestResponse<T>> {
  return rest<T>(cp.adminCreds, method, path, body, contentType);
}

/** Runs the built kubectl (v1.34.4) against the cluster as admin, or with `kubeconfig`. */
export async function kubectl(
  cp: ControlPlane,
  args: string[],
  opts: { kubeconfig?: string; input?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  const run = promisify(execFile);
  const child = run(cp.bin.kubectl, [`--kubeconfig=${opts.kubeconfig ?? cp.kubeconfig}`, ...args], {
    encoding: 'utf8',
    maxBuffer: 32 * 1024 * 1024,
  });
  if (opts.input !== undefined) child.child.stdin?.end(opts.input);
  return child;
}

/** Deletes a namespace without waiting for it to go (its finalizers run in the background). */
export async function dropNamespace(cp: ControlPlane, name: string): Promise<void> {
  await rest(cp.adminCreds, 'DELETE', `/api/v1/namespaces/${name}`);
}

/** A temp dir removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Writes a kubeconfig that authenticates with a fresh token of ServiceAccount `namespace/name`
 * (TokenRequest, one hour): podgate then acts with exactly that account's RBAC.
 */
export async function serviceAccountKubeconfig(
  cp: ControlPlane,
  namespace: string,
  name: string,
  file: string,
): Promise<string> {
  return writeKubeConfig(tokenKubeConfig(cp, await serviceAccountToken(cp, namespace, name)), file);
}

/** `kubectl auth can-i` as `user`: "yes" or "no" (kubectl exits 1 on "no"). */
export async function canI(cp: ControlPlane, user: string, args: string[]): Promise<string> {
  return kubectl(cp, ['auth', 'can-i', `--as=${user}`, ...args]).then(
    (o) => o.stdout.trim(),
    (e: { stdout?: string }) => (e.stdout ?? '').trim(),
  );
}

/** Deletes a namespace and waits until it is gone (its finalizers ran). */
export async function dropNamespaceAndWait(
  cp: ControlPlane,
  name: string,
  timeoutMs = 90_000,
): Promise<void> {
  await rest(cp.adminCreds, 'DELETE', `/api/v1/namespaces/${name}`);
  const until = Date.now() + timeoutMs;
  while ((await rest(cp.adminCreds, 'GET', `/api/v1/namespaces/${name}`)).status !== 404) {
    if (Date.now() > until) throw new Error(`namespace ${name} still there after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The cluster DNS Service discovery reads (kubeadm's name), created once for the run and left in place. */
export async function ensureKubeDns(cp: ControlPlane): Promise<void> {
  // Look first: a second create answers 422 (the cluster IP is taken) before it would say 409.
  if ((await adminRest(cp, 'GET', '/api/v1/namespaces/kube-system/services/kube-dns')).status === 200) return;
  const res = await adminRest(cp, 'POST', '/api/v1/namespaces/kube-system/services', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
    spec: { clusterIP: '10.96.0.10', selector: { 'k8s-app': 'kube-dns' }, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] },
  }); // prettier-ignore
  if (res.status !== 201 && res.status !== 409) throw new Error(`kube-dns: ${res.status}`);
}

/** A bound token for a ServiceAccount (TokenRequest), valid for an hour. */
export async function serviceAccountToken(
  cp: ControlPlane,
  namespace: string,
  name: string,
): Promise<string> {
  const res = await restOk<{ status: { token: string } }>(
    cp.adminCreds,
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  );
  return res.body.status.token;
}

/** A KubeConfig that authenticates with a bearer token (a ServiceAccount's, or a wrong one). */
export function tokenKubeConfig(cp: ControlPlane, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: cp.adminCreds.server, caData: cp.adminCreds.ca.toString('base64') }],
    users: [{ name: 'token', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'token' }],
    currentContext: 'test',
  });
  return kc;
}

/** Writes `kc` as a kubeconfig file (mode 0600) for the CLI or kubectl. */
export function writeKubeConfig(kc: KubeConfig, path: string): string {
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
  return path;
}

/** The admin KubeConfig with its server replaced by `server` (a relay or tunnel in front of the API server). */
export function adminKubeConfigVia(cp: ControlPlane, server: string): KubeConfig {
  const admin = adminKubeConfig(cp);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: admin.clusters.map((c) => ({ ...c, server })),
    users: admin.users,
    contexts: admin.contexts,
    currentContext: admin.currentContext,
  });
  return kc;
}

export interface TcpRelay {
  server: Server;
  /** https://127.0.0.1:port: TLS and the client certificate pass through end to end. */
  url: string;
  /** Resets every connection open so far (a real connection loss); new ones still work. */
  cut(): void;
  close(): void;
}

/**
 * A plain TCP relay 127.0.0.1:port -> the API server. Faults on the connection without touching the
 * shared API server (stopping it would take the controller-manager down with it), and a place to see
 * who connects.
 */
export async function tcpRelay(cp: ControlPlane): Promise<TcpRelay> {
  const to = new URL(cp.adminCreds.server);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: to.hostname, port: Number(to.port) });
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => (client.destroy(), upstream.destroy()));
      s.on('close', () => sockets.delete(s));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const cut = () => {
    for (const s of sockets) s.resetAndDestroy();
  };
  return {
    server,
    url: `https://127.0.0.1:${port}`,
    cut,
    close: () => {
      cut();
      server.close();
    },
  };
}
