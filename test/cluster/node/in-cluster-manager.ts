/**
 * The manager running as a pod on the real node, however it was installed (`kubectl apply -k` on the
 * k8s/ overlay, or `helm install` of charts/podgate): the steps the real-node e2e takes with it, shared
 * so that both installs are held to the same test.
 *
 *   - `waitManagerRollout`: the Deployment Ready, or a failure that carries the container's log (read on
 *     the node: `kubectl logs` cannot reach this kubelet, the API server has no route into its namespace)
 *   - `openManagerApi`: `/healthz` on its Service from the node, then the web API through a relay (a unix
 *     socket here, TCP to the ClusterIP inside the node namespace), signed in as the first admin
 *   - `deployFromManager`: POST /api/v1/deploy and wait for its end
 *   - `revokeCutsClient`: an admin revoke through the API; the client is cut, the podgate-crl Secret's CRL
 *     number rises and it lists the serial
 *   - `requestRetried`: one API call with at most `retries` more tries when no answer came or a 5xx did
 *     (several replicas: a pod going away may drop a call in flight; a user's client retries)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec } from '../../../src/lib/exec.js';
import { runIn, spawnIn, type SpawnedProcess } from '../../helpers/netns.js';
import { SocketHttp, type HttpReply } from './manager-overlay.js';
import { defaultRunDir, NODE_NETNS } from './node.js';
import { kubectlBin } from './paths.js';
import { kubectlSlices, waitForService } from './service-ready.js';

export async function until<T>(
  what: string,
  f: () => Promise<T | undefined>,
  timeoutMs: number,
  stepMs = 250,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** An HTTP GET from inside `nsName` with Node's fetch (Debian's static busybox wget crashes here). */
export async function fetchIn(nsName: string, url: string): Promise<string | undefined> {
  const script = `fetch(process.argv[1],{signal:AbortSignal.timeout(3000)}).then(r=>r.text()).then(t=>console.log(t),()=>process.exit(1))`;
  const r = await runIn(nsName, [process.execPath, '-e', script, url], { check: false, timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout : undefined;
}

/** The last lines of the log files of pods whose directory matches `glob` on the node (pod-logs/NS_NAME-*). */
export async function nodePodLogs(globs: string[], lines = 15): Promise<string> {
  const files = globs.map((g) => `${defaultRunDir()}/pod-logs/${g}`).join(' ');
  const r = await exec(['sh', '-c', `tail -n ${lines} ${files}`], { check: false });
  return r.stdout + r.stderr;
}

/** Waits for Deployment `podgate-manager` in `namespace` to be Ready; fails with its log and events. */
export async function waitManagerRollout(adminKc: string, namespace: string): Promise<void> {
  const k = [kubectlBin(), '--kubeconfig', adminKc, '-n', namespace];
  const rollout = await exec([...k, 'rollout', 'status', 'deployment/podgate-manager', '--timeout=300s'], {
    check: false,
    timeoutMs: 320_000,
  });
  if (rollout.code === 0) return;
  const logs = await nodePodLogs([`${namespace}_podgate-manager-*/manager/*.log`], 5);
  const events = (await exec([...k, 'get', 'events'], { check: false })).stdout;
  assert.fail(`the manager did not become Ready: ${rollout.stderr}\n${logs}\n${events.slice(-3000)}`);
}

export interface ManagerApi {
  http: SocketHttp;
  /** The session's CSRF header for state-changing calls. */
  csrf: Record<string, string>;
  clusterIp: string;
  stop(): Promise<void>;
}

/**
 * `/healthz` on Service `podgate-manager` in `namespace` (reached from the node as any pod would; the
 * Service is fresh, so this waits for its EndpointSlice and kube-proxy's rules), then a relay to it and a
 * sign-in as `admin` with `password`.
 */
export async function openManagerApi(o: {
  adminKc: string;
  namespace: string;
  /** Where the relay's unix socket goes (a dir of the test). */
  socket: string;
  password: string;
}): Promise<ManagerApi> {
  const ip = (
    await exec([
      kubectlBin(),
      '--kubeconfig',
      o.adminKc,
      '-n',
      o.namespace,
      'get',
      'service',
      'podgate-manager',
      '-o',
      'jsonpath={.spec.clusterIP}',
    ])
  ).stdout.trim();
  const healthz = await waitForService({
    service: `${o.namespace}/podgate-manager`,
    slices: kubectlSlices(kubectlBin(), o.adminKc, o.namespace, 'podgate-manager'),
    probe: async () => {
      const text = await fetchIn(NODE_NETNS, `http://${ip}/healthz`);
      return text && /^ok$/m.test(text) ? text : undefined;
    },
  });
  assert.match(healthz, /^ok$/m, '/healthz on the Service');
  const relay: SpawnedProcess = spawnIn(NODE_NETNS, [
    process.execPath,
    fileURLToPath(new URL('./relay.js', import.meta.url)),
    'unix-to-tcp',
    o.socket,
    ip,
    '80',
  ]);
  await relay.waitFor(/relay listening/, 10_000);
  const http = new SocketHttp(o.socket, `podgate-manager.${o.namespace}`);
  const login = await http.request('POST', '/api/v1/login', { name: 'admin', password: o.password });
  assert.equal(login.status, 200, login.text);
  const token = (JSON.parse(login.text) as { csrfToken: string }).csrfToken;
  return { http, csrf: { 'X-CSRF-Token': token }, clusterIp: ip, stop: () => relay.stop(3000) };
}

export interface DeployOutcome {
  state: string;
  error: string | null;
  events: { message: string }[];
}

/** POST /api/v1/deploy (202) and the deploy's end state (`done` or `failed`). */
export async function deployFromManager(
  api: ManagerApi,
  body: Record<string, unknown> = {},
): Promise<DeployOutcome> {
  const started = await api.http.request('POST', '/api/v1/deploy', body, api.csrf);
  assert.equal(started.status, 202, started.text);
  return until(
    'the in-cluster deploy to finish',
    async () => {
      const d = JSON.parse((await api.http.request('GET', '/api/v1/deploy')).text) as DeployOutcome;
      return d.state === 'running' ? undefined : d;
    },
    300_000,
    1000,
  );
}

export interface RetriedReply {
  reply: HttpReply;
  /** 1 when the first try answered. */
  attempts: number;
  /** Why each failed try failed (a transport error or a status). */
  failures: string[];
}

/**
 * `http.request(...)` tried again (at most `retries` times, 200 ms apart) when it threw or answered 5xx;
 * the last try's outcome is returned (or thrown). Other answers, 4xx included, are the caller's to judge.
 */
export async function requestRetried(
  http: SocketHttp,
  retries: number,
  ...args: Parameters<SocketHttp['request']>
): Promise<RetriedReply> {
  const failures: string[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await http.request(...args);
      if (reply.status < 500 || attempt > retries) return { reply, attempts: attempt, failures };
      failures.push(`${reply.status} ${reply.text.slice(0, 200)}`);
    } catch (err) {
      if (attempt > retries) throw err;
      failures.push((err as Error).message);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A device of the signed-in admin through the API: its certificate and `.ovpn` profile. */
export async function newDevice(
  api: ManagerApi,
  name: string,
): Promise<{ serial: string; commonName: string; profile: string }> {
  const created = await api.http.request('POST', '/api/v1/devices', { name }, api.csrf);
  assert.equal(created.status, 201, created.text);
  const { device, profile } = JSON.parse(created.text) as {
    device: { serial: string; commonName: string };
    profile: string;
  };
  return { ...device, profile };
}

/** openssl's reading of the CRL in Secret `podgate-crl` of `serverNamespace`. */
export async function secretCrl(
  adminKc: string,
  serverNamespace: string,
  ...what: string[]
): Promise<string> {
  const b64 = (
    await exec([
      kubectlBin(),
      '--kubeconfig',
      adminKc,
      '-n',
      serverNamespace,
      'get',
      'secret',
      'podgate-crl',
      '-o',
      'jsonpath={.data.crl\\.pem}',
    ])
  ).stdout;
  const out = await exec(['openssl', 'crl', '-noout', ...what], {
    input: Buffer.from(b64.trim(), 'base64').toString(),
  });
  return out.stdout;
}

export async function secretCrlNumber(adminKc: string, serverNamespace: string): Promise<number> {
  const text = await secretCrl(adminKc, serverNamespace, '-crlnumber');
  return parseInt(/crlNumber=(?:0x)?([0-9A-Fa-f]+)/.exec(text)?.[1] ?? 'x', 16);
}

/**
 * Revokes `serial` through the manager's API and waits for `client` to be cut (the server pod's agent
 * applies the new podgate-crl and ends the session). Checks the Secret's CRL rose and lists the serial;
 * returns the time from the API call to the cut (a figure, never asserted).
 */
export async function revokeCutsClient(o: {
  api: ManagerApi;
  adminKc: string;
  managerNamespace: string;
  serverNamespace: string;
  serial: string;
  client: SpawnedProcess;
  /**
   * Tries again after no answer or a 5xx (several replicas, one going away); a retry that finds the
   * certificate already revoked counts as done (the first try took effect, its answer was lost).
   * Default 0. `onRetry` hears each failed try.
   */
  retries?: number;
  onRetry?: (why: string) => void;
}): Promise<number> {
  const before = await secretCrlNumber(o.adminKc, o.serverNamespace);
  const t0 = Date.now();
  const {
    reply: revoked,
    attempts,
    failures,
  } = await requestRetried(
    o.api.http,
    o.retries ?? 0,
    'POST',
    `/api/v1/certs/${o.serial}/revoke`,
    { reason: 'keyCompromise' },
    o.api.csrf,
  );
  for (const f of failures) o.onRetry?.(f);
  if (!(attempts > 1 && revoked.status === 409 && /already revoked/.test(revoked.text)))
    assert.equal(revoked.status, 200, revoked.text);
  await until(
    'the in-cluster revoke to cut the client',
    async () =>
      /server-pushed-halt|SIGTERM|exiting/i.test(o.client.output()) || !o.client.running || undefined,
    60_000,
    20,
  ).catch(async (err: Error) => {
    const logs = await nodePodLogs([
      `${o.managerNamespace}_podgate-manager-*/manager/*.log`,
      `${o.serverNamespace}_podgate-openvpn-*/*/*.log`,
    ]);
    const now = await secretCrlNumber(o.adminKc, o.serverNamespace).catch(() => NaN);
    throw new Error(`${err.message}; CRL number in podgate-crl ${now}\n${logs}`);
  });
  const ms = Date.now() - t0;
  const after = await secretCrlNumber(o.adminKc, o.serverNamespace);
  assert.ok(after > before, `CRL number in podgate-crl rose: ${before} → ${after}`);
  assert.match(
    await secretCrl(o.adminKc, o.serverNamespace, '-text'),
    new RegExp(`Serial Number: 0*${o.serial.replace(/^0+/, '')}\\b`, 'i'),
    'the Secret lists the serial',
  );
  return ms;
}

/** Where the relay's socket for a manager goes inside a test's work dir. */
export const managerSocket = (work: string, name: string) => join(work, `${name}.sock`);
