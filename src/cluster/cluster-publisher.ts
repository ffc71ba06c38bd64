import type { Config } from '../config/schema.js';
import type { AccessBundle } from '../access/types.js';
import type { AccessPublisher } from '../openvpn/access-publisher.js';
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
    async publish(bundle: AccessBundle): Promise<void> {
      const [{ applyAccessSecret }, { connectKube }] = await Promise.all([
        import('./access-secret-publisher.js'),
        import('./kube-connection.js'),
      ]);
      const connection = connectKube(config);
      try {
        await applyAccessSecret(connection.api, config.kubernetes.namespace, bundle);
      } finally {
        await connection.close();
      }
    },
  };
}
