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
  let inner: Promise<CrlPublisher> | undefined;
  const load = async (): Promise<CrlPublisher> => {
    const [{ SecretCrlPublisher }, { createKubeApi, loadKubeConfig }] = await Promise.all([
      import('./secret-publisher.js'),
      import('./kube-client.js'),
    ]);
    return new SecretCrlPublisher(
      createKubeApi(loadKubeConfig(config.kubernetes)),
      config.kubernetes.namespace,
    );
  };
  return {
    name: 'k8s-secret',
    async publish(bundle: RevocationBundle): Promise<void> {
      inner ??= load();
      try {
        await (await inner).publish(bundle);
      } catch (err) {
        inner = undefined; // a bad kubeconfig may be fixed before the next revocation
        throw err;
      }
    },
  };
}
