import type { Config } from '../config/schema.js';
import type { AccessBundle } from '../access/types.js';
import type { AccessPublisher } from '../openvpn/access-publisher.js';
import { logger } from '../lib/logger.js';
import type { CrlPublisher, RevocationBundle } from '../openvpn/revocation-bundle.js';
import { refText, type KubeApi, type KubeObject, type ObjectRef } from './kube-api.js';
import type { KubeConnection } from './kube-connection.js';
import { OBJECT_NAMES } from './pod-layout.js';

const log = logger.child({ module: 'cluster.publisher' });

/**
 * The connection the publishers use: the Secret writer over node:https (kube-secrets.ts) when the
 * kubeconfig needs nothing more, so that a publish loads no Kubernetes client; otherwise (SSH bastion,
 * exec plugins, …) the full client, as `connectKube` builds it. Calls other than a Secret read or apply
 * load the full client on first use.
 */
export async function connectSecrets(config: Config, env: NodeJS.ProcessEnv): Promise<KubeConnection> {
  const [{ resolveKube }, { createSecretsApi }] = await Promise.all([
    import('./kubeconfig.js'),
    import('./kube-secrets.js'),
  ]);
  const resolved = resolveKube(config.kubernetes, env);
  const full = () => import('./kube-connection.js').then((m) => m.connectKube(config, env, resolved));
  const target = resolved.target;
  if (!target || config.kubernetes.sshBastion) return full();
  let fallback: Promise<KubeConnection> | undefined;
  const api = createSecretsApi(target, () => (fallback ??= full()).then((c) => c.api));
  return {
    api,
    close: async () => {
      api.close();
      if (fallback) await (await fallback).close();
    },
  };
}

/** How long a Secret read ahead (`primed`) may stand in for the publish's own first read. */
const PRIMED_MS = 5_000;

/**
 * `api` whose first read of `ref`, within PRIMED_MS, is the read started now: a publish then costs one
 * write once the bundle is ready, its read having overlapped the store and the signing. Safe with an
 * old read: the write carries the resourceVersion that was read as a precondition, so a Secret changed
 * meanwhile answers 409 and applyUnlessNewer reads it again. A Secret found absent is read again (its
 * create has no precondition). The read also opens the connection (TCP, TLS; the full client's
 * discovery), which is all a keep-warm process keeps of it after PRIMED_MS.
 */
export function primed(api: KubeApi, ref: ObjectRef): KubeApi {
  const at = Date.now();
  let early: Promise<KubeObject | undefined> | undefined = api.get(ref);
  early.catch((err: unknown) => log.debug({ err: String(err) }, 'Kubernetes API read-ahead failed'));
  return {
    ...api,
    async get(r) {
      const ahead = early;
      early = undefined;
      if (ahead && Date.now() - at < PRIMED_MS && refText(r) === refText(ref)) {
        const live = await ahead.catch(() => undefined);
        if (live) return live;
      }
      return api.get(r);
    },
  };
}

/**
 * One publish at a time over a connection opened (and the Secret read) ahead by `prepare()`; the
 * connection is closed after each publish so a CLI command does not hang on it (through the SSH
 * bastion when one is configured, opened on its first request). `keepWarm` (long-lived processes)
 * prepares the next connection as soon as a publish is done.
 */
function preparedPublishes<R>(
  config: Config,
  env: NodeJS.ProcessEnv,
  secretName: string,
  keepWarm: boolean,
): { prepare(): void; run(work: (api: KubeApi) => Promise<R>): Promise<R> } {
  let next: Promise<{ api: KubeApi; connection: KubeConnection }> | undefined;
  const prepare = () =>
    (next ??= connectSecrets(config, env).then((connection) => ({
      connection,
      api: primed(connection.api, {
        apiVersion: 'v1',
        kind: 'Secret',
        namespace: config.kubernetes.namespace,
        name: secretName,
      }),
    })));
  return {
    prepare: () => void prepare().catch(() => undefined), // the publish that needs it reports the failure
    async run(work) {
      const current = prepare();
      next = undefined;
      const { api, connection } = await current;
      try {
        return await work(api);
      } finally {
        await connection.close();
        if (keepWarm) prepare().catch(() => undefined);
      }
    },
  };
}

/**
 * The Secret publisher for the composition root, when podgate manages a cluster: a kubeconfig is
 * configured (kubernetes.kubeconfig) or podgate runs in a pod (the k8s/ base). Otherwise undefined, so
 * that local mode does not log a failing publish after every revocation, and commands that do not publish
 * never load the Kubernetes client (it costs ~60 MB and hundreds of milliseconds).
 *
 * `prepare()` reads the kubeconfig, opens the connection and reads the podgate-crl Secret, in the
 * background: `serve` calls it at start and again after every publish, a CLI command that will publish
 * calls it before opening the store, so that the publish itself is one write of the Secret and the
 * first revocation of a process is no slower than the next.
 */
export function clusterPublisherFor(
  config: Config,
  env: NodeJS.ProcessEnv,
  options: { keepWarm?: boolean } = {},
): CrlPublisher | undefined {
  if (!config.kubernetes.kubeconfig && !env.KUBERNETES_SERVICE_HOST) return undefined;
  const publishes = preparedPublishes<void>(config, env, OBJECT_NAMES.crlSecret, options.keepWarm === true);
  return {
    name: 'k8s-secret',
    prepare: publishes.prepare,
    publish: (bundle: RevocationBundle) =>
      publishes.run(async (api) => {
        const { SecretCrlPublisher } = await import('./secret-publisher.js');
        await new SecretCrlPublisher(api, config.kubernetes.namespace).publish(bundle);
      }),
  };
}

/**
 * Cluster mode's access publisher: Secret `podgate-access` (data key `access.json`), never over a
 * higher version (see access-secret-publisher). One connection per publish, like the CRL's, prepared
 * the same way by `prepare()`.
 */
export function clusterAccessPublisherFor(
  config: Config,
  env: NodeJS.ProcessEnv,
): (AccessPublisher & { prepare(): void }) | undefined {
  if (!config.kubernetes.kubeconfig && !env.KUBERNETES_SERVICE_HOST) return undefined;
  const publishes = preparedPublishes<void | { heldVersion: number }>(
    config,
    env,
    OBJECT_NAMES.accessSecret,
    false,
  );
  return {
    name: 'k8s-secret:podgate-access',
    prepare: publishes.prepare,
    publish: (bundle: AccessBundle) =>
      publishes.run(async (api) => {
        const { applyAccessSecret, accessVersionOf } = await import('./access-secret-publisher.js');
        const { stored, written } = await applyAccessSecret(api, config.kubernetes.namespace, bundle);
        const held = written ? undefined : accessVersionOf(stored);
        return held === undefined ? undefined : { heldVersion: held };
      }),
  };
}

/**
 * For restore in cluster mode: the CRL number the `podgate-crl` Secret holds (the highest the server
 * may have seen), `null` when there is no such Secret, `undefined` when no cluster is configured.
 * Throws when the API server cannot be asked (the caller then asks for `--crl-number-above`).
 */
export async function publishedCrlNumber(
  config: Config,
  env: NodeJS.ProcessEnv,
): Promise<number | null | undefined> {
  if (!config.kubernetes.kubeconfig && !env.KUBERNETES_SERVICE_HOST) return undefined;
  const [connection, { bundleFromSecret }, { OBJECT_NAMES }] = await Promise.all([
    connectSecrets(config, env),
    import('./secret-watch-source.js'),
    import('./pod-layout.js'),
  ]);
  try {
    const secret = await connection.api.get({
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: config.kubernetes.namespace,
      name: OBJECT_NAMES.crlSecret,
    });
    if (!secret) return null;
    return bundleFromSecret(secret)?.crlNumber ?? null;
  } finally {
    await connection.close();
  }
}
