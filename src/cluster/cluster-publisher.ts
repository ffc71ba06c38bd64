import type { Config } from '../config/schema.js';
import type { CrlPublisher, RevocationBundle } from '../openvpn/revocation-bundle.js';

/**
 * The Secret publisher for the composition root, when podgate manages a cluster: a kubeconfig is
 * configured (kubernetes.kubeconfig) or podgate runs in a pod (the k8s/ base). Otherwise undefined, so
 * that local mode does not log a failing publish after every revocation. The Kubernetes client is
 * loaded on the first publish only (it costs ~60 MB and start-up time every CLI command would pay).
 */
export function clusterPublisherFor(config: Config, env: NodeJS.ProcessEnv): CrlPublisher | undefined {
  if (!config.kubernetes.kubeconfig && !env.KUBERNETES_SERVICE_HOST) return undefined;
  return {
    name: 'k8s-secret',
    async publish(bundle: RevocationBundle): Promise<void> {
      // One connection per publish (revocations are rare): through the SSH bastion when one is configured,
      // and closed afterwards so a short CLI command does not hang on an open tunnel.
      const [{ SecretCrlPublisher }, { connectKube }] = await Promise.all([
        import('./secret-publisher.js'),
        import('./kube-connection.js'),
      ]);
      const connection = connectKube(config);
      try {
        await new SecretCrlPublisher(connection.api, config.kubernetes.namespace).publish(bundle);
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
  const [{ connectKube }, { bundleFromSecret }, { OBJECT_NAMES }] = await Promise.all([
    import('./kube-connection.js'),
    import('./secret-watch-source.js'),
    import('./pod-layout.js'),
  ]);
  const connection = connectKube(config);
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
