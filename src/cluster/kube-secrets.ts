import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import type { Config } from '../config/schema.js';
import { yamlLib } from '../lib/yaml.js';
import { KubeApiError, refText, type KubeApi, type KubeObject, type ObjectRef } from './kube-api.js';

/**
 * Where the API server is and how to prove who we are, as read from a kubeconfig or from the pod's
 * service account: only what a Secret read and write needs.
 */
export interface SecretsTarget {
  server: URL;
  ca?: Buffer;
  insecure: boolean;
  tlsServerName?: string;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  /** Read again for every request (a projected service-account token is rotated in place). */
  tokenFile?: string;
  /** Where the settings came from, for error messages. */
  source: string;
}

/** The pod's service account, as the Kubernetes client reads it in a pod. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Named<T> = { name?: string } & T;
interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Named<{ context?: { cluster?: string; user?: string } }>[];
  clusters?: Named<{ cluster?: Record<string, unknown> }>[];
  users?: Named<{ user?: Record<string, unknown> }>[];
}

/** User and cluster keys the Secret writer understands; any other (exec, auth-provider, …) needs the full client. */
const USER_KEYS = new Set([
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'token',
  'tokenFile',
]);
const CLUSTER_KEYS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'tls-server-name',
  'extensions',
]);

/**
 * The Secret writer's target, found the way the Kubernetes client finds its kubeconfig
 * (kubernetes.kubeconfig, else KUBECONFIG, else ~/.kube/config, else the pod's service account), or
 * undefined when the full client is needed: an SSH bastion, several KUBECONFIG files, or a kubeconfig
 * that authenticates by other means than client certificates and bearer tokens (exec plugins,
 * auth providers, passwords) or names a proxy. The full client then does the work, as before.
 */
export function secretsTarget(
  k8s: Pick<Config['kubernetes'], 'kubeconfig' | 'context' | 'sshBastion'>,
  env: NodeJS.ProcessEnv,
): SecretsTarget | undefined {
  if (k8s.sshBastion) return undefined;
  let file = k8s.kubeconfig || env.KUBECONFIG;
  if (file?.includes(':')) return undefined; // a merged list of files
  if (!file) {
    const home = join(env.HOME || homedir(), '.kube', 'config');
    if (existsSync(home)) file = home;
  }
  if (file) return fromKubeconfig(file, k8s.context);
  if (!env.KUBERNETES_SERVICE_HOST) return undefined;
  const host = env.KUBERNETES_SERVICE_HOST.includes(':')
    ? `[${env.KUBERNETES_SERVICE_HOST}]`
    : env.KUBERNETES_SERVICE_HOST;
  const tokenFile = join(SERVICE_ACCOUNT_DIR, 'token');
  if (!existsSync(tokenFile)) return undefined;
  return {
    server: new URL(`https://${host}:${env.KUBERNETES_SERVICE_PORT || '443'}`),
    ca: readFileSync(join(SERVICE_ACCOUNT_DIR, 'ca.crt')),
    insecure: false,
    tokenFile,
    source: 'the pod service account',
  };
}

function fromKubeconfig(file: string, context?: string): SecretsTarget | undefined {
  const what = `kubeconfig ${file}`;
  let doc: KubeconfigFile;
  try {
    doc = (yamlLib().parse(readFileSync(file, 'utf8')) ?? {}) as KubeconfigFile;
  } catch {
    return undefined; // the full client reports what is wrong with it
  }
  const ctxName = context || doc['current-context'];
  const ctx = doc.contexts?.find((c) => c.name === ctxName)?.context;
  const cluster = doc.clusters?.find((c) => c.name === ctx?.cluster)?.cluster;
  const user = ctx?.user ? (doc.users?.find((u) => u.name === ctx.user)?.user ?? {}) : {};
  if (!cluster || typeof cluster.server !== 'string') return undefined;
  if (Object.keys(cluster).some((k) => !CLUSTER_KEYS.has(k))) return undefined;
  if (Object.keys(user).some((k) => !USER_KEYS.has(k))) return undefined;
  const base = dirname(file);
  const bytes = (data: unknown, path: unknown): Buffer | undefined => {
    if (typeof data === 'string' && data) return Buffer.from(data, 'base64');
    if (typeof path === 'string' && path) return readFileSync(isAbsolute(path) ? path : join(base, path));
    return undefined;
  };
  const tokenFile = typeof user.tokenFile === 'string' && user.tokenFile ? user.tokenFile : undefined;
  return {
    server: new URL(cluster.server),
    ca: bytes(cluster['certificate-authority-data'], cluster['certificate-authority']),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
    cert: bytes(user['client-certificate-data'], user['client-certificate']),
    key: bytes(user['client-key-data'], user['client-key']),
    token: typeof user.token === 'string' && user.token ? user.token : undefined,
    tokenFile: tokenFile && (isAbsolute(tokenFile) ? tokenFile : join(base, tokenFile)),
    source: what,
  };
}

/** `/api/v1/namespaces/NS/secrets/NAME` of a Secret reference; throws for any other kind (a caller's bug). */
function secretPath(ref: ObjectRef): string {
  if (ref.apiVersion !== 'v1' || ref.kind !== 'Secret' || !ref.namespace || !ref.name) {
    throw new Error(`the Secret writer handles v1 Secrets only, not ${refText(ref)}`);
  }
  return `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/secrets/${encodeURIComponent(ref.name)}`;
}

interface Answer {
  status: number;
  body: string;
}

/**
 * The KubeApi of the CRL and access publishers: reading and server-side applying a v1 Secret over
 * node:https, as one request each on one kept-alive connection, without loading @kubernetes/client-node
 * (which alone costs a CLI revoke hundreds of milliseconds, seconds on a loaded host). Every other
 * call is handed to `full()`, the real client (kube-client.ts), loaded on its first use.
 *
 * Limits: only what `secretsTarget` reads (client certificates, bearer tokens, a CA, no proxy).
 */
export function createSecretsApi(
  target: SecretsTarget,
  full: () => Promise<KubeApi>,
  options: { timeoutMs?: number } = {},
): KubeApi & { close(): void } {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const tls = target.server.protocol === 'https:';
  const agent = tls
    ? new Agent({
        keepAlive: true,
        maxSockets: 1,
        ca: target.ca,
        cert: target.cert,
        key: target.key,
        rejectUnauthorized: !target.insecure,
        servername: target.tlsServerName,
      })
    : undefined;

  const send = (method: string, path: string, what: string, body?: string, type?: string): Promise<Answer> =>
    new Promise<Answer>((resolve, reject) => {
      const headers: Record<string, string> = { Accept: 'application/json' };
      const token = target.tokenFile ? readFileSync(target.tokenFile, 'utf8').trim() : target.token;
      if (token) headers.Authorization = `Bearer ${token}`;
      if (body !== undefined) {
        headers['Content-Type'] = type ?? 'application/json';
        headers['Content-Length'] = String(Buffer.byteLength(body));
      }
      const url = new URL(path, target.server);
      // a server URL with a path prefix (a proxy in front of the API server) keeps it
      if (target.server.pathname !== '/')
        url.pathname = target.server.pathname.replace(/\/$/, '') + path.split('?')[0];
      const req = (tls ? httpsRequest : httpRequest)(
        url,
        { method, headers, ...(agent ? { agent } : {}), timeout: timeoutMs },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', (err) => reject(unreachable(err, what)));
        },
      );
      req.on('timeout', () =>
        req.destroy(new KubeApiError(0, 'Timeout', `no answer within ${timeoutMs} ms`, what)),
      );
      req.on('error', (err) => reject(unreachable(err, what)));
      req.end(body);
    });

  const unreachable = (err: unknown, what: string): KubeApiError => {
    if (err instanceof KubeApiError) return err;
    const e = err as { code?: string; message?: string };
    return new KubeApiError(
      0,
      e.code ?? 'Unreachable',
      `${e.message ?? String(err)} (${target.source})`,
      what,
      err,
    );
  };

  const failure = (a: Answer, what: string): KubeApiError => {
    let status: { reason?: string; message?: string } = {};
    try {
      status = JSON.parse(a.body) as typeof status;
    } catch {
      status = { message: a.body.slice(0, 300) };
    }
    const message =
      a.status === 401
        ? `the API server did not accept the credentials of ${target.source}` +
          (status.message ? ` (${status.message})` : '')
        : (status.message ?? 'request failed');
    return new KubeApiError(a.status, status.reason ?? '', message, what);
  };

  const api: KubeApi & { close(): void } = {
    async get(ref) {
      if (ref.apiVersion !== 'v1' || ref.kind !== 'Secret') return (await full()).get(ref);
      const what = `read ${refText(ref)}`;
      const a = await send('GET', secretPath(ref), what);
      if (a.status === 404) return undefined;
      if (a.status !== 200) throw failure(a, what);
      return JSON.parse(a.body) as KubeObject;
    },
    async apply(obj) {
      const ref = {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name ?? '',
        namespace: obj.metadata.namespace,
      };
      if (ref.apiVersion !== 'v1' || ref.kind !== 'Secret') return (await full()).apply(obj);
      const what = `apply ${refText(ref)}`;
      const a = await send(
        'PATCH',
        `${secretPath(ref)}?fieldManager=podgate&force=true`,
        what,
        JSON.stringify(obj),
        'application/apply-patch+yaml',
      );
      if (a.status !== 200 && a.status !== 201) throw failure(a, what);
      return JSON.parse(a.body) as KubeObject;
    },
    list: async (...a) => (await full()).list(...a),
    create: async (...a) => {
      const inner = await full();
      if (!inner.create) throw new Error('this Kubernetes client cannot create objects');
      return inner.create(...a);
    },
    createDryRun: async (...a) => (await full()).createDryRun(...a),
    canI: async (...a) => (await full()).canI(...a),
    whoAmI: async () => (await full()).whoAmI(),
    mergePatch: async (...a) => (await full()).mergePatch(...a),
    watch: async (...a) => (await full()).watch(...a),
    /** Opens the connection (TCP + TLS) ahead of the first request; errors are the request's to report. */
    async warm() {
      await send('GET', '/version', 'API server version').catch(() => undefined);
    },
    close() {
      agent?.destroy();
    },
  };
  return api;
}
