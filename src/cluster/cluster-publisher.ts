import type { Config } from '../config/schema.js';
import type { AccessBundle } from '../access/types.js';
import type { AccessPublisher } from '../openvpn/access-publisher.js';
import { logger } from '../lib/logger.js';
import type { CrlPublisher, RevocationBundle } from '../openvpn/revocation-bundle.js';
import type { KubeConnection } from './kube-connection.js';

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

interface Prepared {
  publisher: { publish(bundle: RevocationBundle): Promise<void> };
  connection: KubeConnection;
}

/**
 * The Secret publisher for the composition root, when podgate manages a cluster: a kubeconfig is
 * configured (kubernetes.kubeconfig) or podgate runs in a pod (the k8s/ base). Otherwise undefined, so
 * that local mode does not log a failing publish after every revocation, and commands that do not publish
 * never load the Kubernetes client (it costs ~60 MB and hundreds of milliseconds).
 *
 * `prepare()` loads the client, reads the kubeconfig and asks the API server where Secrets live
 * (discovery), in the background: `serve` calls it at start and again after every publish, a CLI
 * command that will publish calls it before opening the store, so that the publish itself is a read
 * and a write of the Secret and the first revocation of a process is no slower than the next.
 * `keepWarm` (long-lived processes) prepares the next connection as soon as a publish is done.
 */
export function clusterPublisherFor(
  config: Config,
  env: NodeJS.ProcessEnv,
  options: { keepWarm?: boolean } = {},
): CrlPublisher | undefined {
  if (!config.kubernetes.kubeconfig && !env.KUBERNETES_SERVICE_HOST) return undefined;
  let next: Promise<Prepared> | undefined;
  const prepare = (): Promise<Prepared> =>
    (next ??= (async () => {
      const [{ SecretCrlPublisher }, connection] = await Promise.all([
        import('./secret-publisher.js'),
        // One connection per publish (revocations are rare): through the SSH bastion when one is
        // configured (opened on its first request), closed afterwards so a CLI command does not hang on it.
        connectSecrets(config, env),
      ]);
      const warming = connection.api.warm?.();
      warming?.catch((err: unknown) => log.debug({ err: String(err) }, 'Kubernetes API warm-up failed'));
      return { publisher: new SecretCrlPublisher(connection.api, config.kubernetes.namespace), connection };
    })());
  return {
    name: 'k8s-secret',
    prepare(): void {
      prepare().catch(() => undefined); // the publish that needs it reports the failure
    },
    async publish(bundle: RevocationBundle): Promise<void> {
      const current = prepare();
      next = undefined;
      const { publisher, connection } = await current;
      try {
        await publisher.publish(bundle);
      } finally {
        await connection.close();
        if (options.keepWarm) prepare().catch(() => undefined);
      }
    },
  };
}

/**
 * Cluster mode's access publisher: Secret `podgate-access` (data key `access.json`), never over a
 * higher version (see access-secret-publisher). One connection per publish, like the CRL's.
 */
export function clusterAccessPublisherFor(
  config: Config,
  env: NodeJS.ProcessEnv,
): AccessPublisher | undefined {
  if (!config.kubernetes.kubeconfig && !env.KUBERNETES_SERVICE_HOST) return undefined;
  return {
    name: 'k8s-secret:podgate-access',
    async publish(bundle: AccessBundle): Promise<void | { heldVersion: number }> {
      const [{ applyAccessSecret, accessVersionOf }, connection] = await Promise.all([
        import('./access-secret-publisher.js'),
        connectSecrets(config, env),
      ]);
      try {
        const { stored, written } = await applyAccessSecret(
          connection.api,
          config.kubernetes.namespace,
          bundle,
        );
        const held = written ? undefined : accessVersionOf(stored);
        return held === undefined ? undefined : { heldVersion: held };
      } finally {
        await connection.close();
      }
    },
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
