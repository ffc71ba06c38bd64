import {
  ApiException,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  type KubernetesObject,
  type RequestContext,
} from '@kubernetes/client-node';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Config } from '../config/schema.js';
import { logger } from '../lib/logger.js';
import {
  KubeApiError,
  refText,
  type KubeApi,
  type KubeList,
  type KubeObject,
  type ObjectRef,
  type WatchEventType,
} from './kube-api.js';
import { resolveKube, serverText, type KubeResolution } from './kubeconfig.js';

const log = logger.child({ module: 'cluster.kube' });

/** podgate's field manager for server-side apply. */
export const FIELD_MANAGER = 'podgate';

/**
 * The client's KubeConfig for what kubeconfig.ts resolved: built from the target it read (the same
 * server, CA and credentials the Secret writer uses), or, for a kubeconfig only the client can use
 * (exec plugins, auth providers, a proxy, a KUBECONFIG list), loaded by the client from that file.
 */
export function kubeConfigFor(resolved: KubeResolution): KubeConfig {
  const kc = new KubeConfig();
  if (resolved.target) {
    const t = resolved.target;
    const b64 = (b?: Buffer) => b?.toString('base64');
    kc.loadFromOptions({
      clusters: [
        {
          name: 'podgate',
          server: serverText(t),
          caData: b64(t.ca),
          skipTLSVerify: t.insecure,
          tlsServerName: t.tlsServerName,
        },
      ],
      users: [
        {
          name: 'podgate',
          certData: b64(t.cert),
          keyData: b64(t.key),
          token: t.token,
          // the client's own reader of a rotated token file (it reads kubeconfig `token-file` only once)
          ...(t.tokenFile ? { authProvider: { name: 'tokenFile', config: { tokenFile: t.tokenFile } } } : {}),
        },
      ],
      contexts: [{ name: 'podgate', cluster: 'podgate', user: 'podgate' }],
      currentContext: 'podgate',
    });
    return kc;
  }
  if (resolved.full.file) kc.loadFromFile(resolved.full.file);
  else kc.loadFromDefault();
  if (resolved.full.context) kc.setCurrentContext(resolved.full.context);
  if (!kc.getCurrentCluster()) {
    throw new KubeApiError(0, 'NoCluster', 'no current cluster in the kubeconfig', 'kubeconfig');
  }
  return kc;
}

/** kubeConfigFor(resolveKube(k8s, env)): the kubeconfig config and the environment name. */
export function loadKubeConfig(
  k8s: Pick<Config['kubernetes'], 'kubeconfig' | 'context'>,
  env: NodeJS.ProcessEnv,
): KubeConfig {
  return kubeConfigFor(resolveKube(k8s, env));
}

/** Plain JSON (the client returns class instances with Date fields for built-in kinds). */
function plain<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Turns anything the client throws into a KubeApiError naming `what`. */
export function toKubeError(err: unknown, what: string): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (err instanceof ApiException) {
    let body: { reason?: string; message?: string } = {};
    const raw: unknown = err.body;
    try {
      body = typeof raw === 'string' ? (JSON.parse(raw) as typeof body) : ((raw as typeof body) ?? {});
    } catch {
      body = { message: String(raw).slice(0, 300) };
    }
    return new KubeApiError(err.code, body.reason ?? '', body.message ?? 'request failed', what, err);
  }
  const e = err as { message?: string; code?: string };
  return new KubeApiError(0, e.code ?? 'Unreachable', e.message ?? String(err), what, err);
}

/** Our KubeObject is structurally a KubernetesObject; the client's type is stricter about metadata. */
function k8s(obj: KubeObject): KubernetesObject {
  return structuredClone(obj) as unknown as KubernetesObject;
}

function isNotFound(err: unknown): boolean {
  if (err instanceof ApiException) return err.code === 404;
  // KubernetesObjectApi says so when discovery lists the group/version but not the kind.
  return err instanceof Error && /Unrecognized API version and kind/.test(err.message);
}

/** The AbortSignal of the call in progress, read by the client middleware added in `abortable`. */
const callSignal = new AsyncLocalStorage<AbortSignal>();

/** The client's rxjs-stub Observable: only toPromise() is used by its request chain. */
const passThrough = <T>(value: T) => ({ toPromise: () => Promise.resolve(value) });

/**
 * Lets withDeadline abort requests: a middleware that hands the fetch the current call's AbortSignal
 * (KubernetesObjectApi takes no per-call signal; its own discovery requests get it too).
 */
function abortable(objects: KubernetesObjectApi): KubernetesObjectApi {
  const conf = (objects as unknown as { configuration: { middleware: unknown[] } }).configuration;
  conf.middleware.push({
    pre: (ctx: RequestContext) => {
      const signal = callSignal.getStore();
      if (signal) ctx.setSignal(signal);
      return passThrough(ctx);
    },
    post: (res: unknown) => passThrough(res),
  });
  return objects;
}

/**
 * Rejects with a Timeout KubeApiError when the call takes longer than `ms`, and aborts its HTTP request
 * so that a server that never answers holds no socket.
 */
export function withDeadline<T>(what: string, ms: number, work: () => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new KubeApiError(0, 'Timeout', `no answer within ${ms} ms`, what));
    }, ms);
  });
  const running = callSignal.run(controller.signal, work);
  running.catch(() => undefined); // after the deadline its rejection (AbortError) is nobody's concern
  return Promise.race([running, deadline]).finally(() => clearTimeout(timer));
}

export interface KubeClientOptions {
  /** Per-request deadline; default 15 s. */
  timeoutMs?: number;
}

/** Plural resource names of the kinds podgate watches (a watch goes by path, without discovery). */
const WATCHED_PLURALS: Record<string, string> = {
  Secret: 'secrets',
  Namespace: 'namespaces',
  Pod: 'pods',
  Service: 'services',
  EndpointSlice: 'endpointslices',
};

/** `/api/v1/namespaces/NS/pods`, `/apis/discovery.k8s.io/v1/endpointslices` (cluster-wide without `namespace`). */
export function collectionPath(apiVersion: string, kind: string, namespace?: string): string {
  const plural = WATCHED_PLURALS[kind];
  if (!plural) throw new Error(`no watch path for ${kind}`);
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${plural}` : `${base}/${plural}`;
}

/** The real KubeApi, on @kubernetes/client-node (KubernetesObjectApi for objects, Watch for watches). */
export function createKubeApi(kc: KubeConfig, options: KubeClientOptions = {}): KubeApi {
  const objects = abortable(KubernetesObjectApi.makeApiClient(kc));
  const timeoutMs = options.timeoutMs ?? 15_000;
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await withDeadline(what, timeoutMs, fn);
    } catch (err) {
      throw toKubeError(err, what);
    }
  };
  const header = (ref: ObjectRef) => ({
    apiVersion: ref.apiVersion,
    kind: ref.kind,
    metadata: { name: ref.name, namespace: ref.namespace },
  });

  /**
   * Creates a self-review (access or identity) and returns its status; undefined when the API server
   * cannot answer (an old release, an aggregated API down): callers then go on without the answer.
   */
  async function review<T>(what: string, body: Record<string, unknown>): Promise<T | undefined> {
    try {
      const res = plain<{ status?: T }>(
        await withDeadline(what, timeoutMs, () =>
          objects.create({ ...body, metadata: {} } as KubernetesObject),
        ),
      );
      return res.status;
    } catch (err) {
      log.debug({ err: String(err) }, `${what} unavailable`);
      return undefined;
    }
  }

  return {
    async warm() {
      // KubernetesObjectApi looks the kind up in API discovery before its first call and caches it;
      // `resource` is that (protected) lookup.
      const lookup = objects as unknown as { resource(apiVersion: string, kind: string): Promise<unknown> };
      await withDeadline('discover v1 Secret', timeoutMs, () => lookup.resource('v1', 'Secret'));
    },
    async get(ref) {
      const what = `read ${refText(ref)}`;
      try {
        return plain<KubeObject>(await withDeadline(what, timeoutMs, () => objects.read(header(ref))));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw toKubeError(err, what);
      }
    },
    async list(apiVersion, kind, opts = {}) {
      const what = `list ${kind} (${apiVersion})${opts.namespace ? ` in ${opts.namespace}` : ''}`;
      try {
        const res = await withDeadline(what, timeoutMs, () =>
          objects.list(
            apiVersion,
            kind,
            opts.namespace,
            undefined,
            undefined,
            undefined,
            opts.fieldSelector,
            opts.labelSelector,
          ),
        );
        const list = plain<{ items?: KubeObject[]; metadata?: { resourceVersion?: string } }>(res);
        const items = (list.items ?? []).map((i) => ({ ...i, apiVersion, kind }));
        return { items, resourceVersion: list.metadata?.resourceVersion ?? '' } satisfies KubeList;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw toKubeError(err, what);
      }
    },
    apply(obj) {
      return call(`apply ${refText({ kind: obj.kind, ...obj.metadata })}`, async () =>
        plain<KubeObject>(
          await objects.patch(
            k8s(obj),
            undefined,
            undefined,
            FIELD_MANAGER,
            true,
            PatchStrategy.ServerSideApply,
          ),
        ),
      );
    },
    create(obj) {
      return call(`create ${refText({ kind: obj.kind, ...obj.metadata })}`, async () =>
        plain<KubeObject>(await objects.create(k8s(obj), undefined, undefined, FIELD_MANAGER)),
      );
    },
    createDryRun(obj) {
      return call(`dry-run create ${refText({ kind: obj.kind, ...obj.metadata })}`, async () =>
        plain<KubeObject>(await objects.create(k8s(obj), undefined, 'All', FIELD_MANAGER)),
      );
    },
    async canI(check) {
      const status = await review<{ allowed?: boolean }>('access review', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: check },
      });
      return status === undefined ? undefined : status.allowed === true;
    },
    async whoAmI() {
      const status = await review<{ userInfo?: { username?: string } }>('self subject review', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'SelfSubjectReview',
      });
      return status?.userInfo?.username;
    },
    mergePatch(ref, patch) {
      // a patch of metadata (annotations) keeps the name and namespace the request path is built from
      const head = header(ref);
      const body = {
        ...head,
        ...patch,
        metadata: { ...(patch.metadata as Record<string, unknown> | undefined), ...head.metadata },
      } as KubeObject;
      return call(`patch ${refText(ref)}`, async () =>
        plain<KubeObject>(
          await objects.patch(
            k8s(body),
            undefined,
            undefined,
            FIELD_MANAGER,
            undefined,
            PatchStrategy.MergePatch,
          ),
        ),
      );
    },
    async watch(apiVersion, kind, opts, onEvent, onDone) {
      const query = {
        resourceVersion: opts.resourceVersion,
        fieldSelector: opts.fieldSelector,
        allowWatchBookmarks: true,
        timeoutSeconds: opts.timeoutSeconds,
      };
      let stopped = false;
      const controller = await new Watch(kc).watch(
        collectionPath(apiVersion, kind, opts.namespace),
        query,
        (type, obj) => {
          if (!stopped) onEvent(type as WatchEventType, obj as KubeObject);
        },
        (err) => {
          if (err && !stopped) log.debug({ err: String(err), kind }, 'watch ended with an error');
          onDone(stopped ? null : err);
        },
      );
      return {
        stop() {
          stopped = true;
          controller.abort();
        },
      };
    },
  };
}
