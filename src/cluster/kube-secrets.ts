import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { KubeApiError, refText, type KubeApi, type KubeObject, type ObjectRef } from './kube-api.js';
import type { KubeTarget } from './kubeconfig.js';

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
 * Limits: only a target kubeconfig.ts resolves itself (client certificates, bearer tokens, a CA, no
 * proxy); a kubeconfig that needs the full client never reaches here.
 */
export function createSecretsApi(
  target: KubeTarget,
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
