import type { CrlPublisher, RevocationBundle } from '../openvpn/revocation-bundle.js';
import { logger } from '../lib/logger.js';
import type { Config } from '../config/schema.js';
import type { KubeApi } from './kube-api.js';
import { createKubeApi, loadKubeConfig } from './kube-client.js';
import { crlSecret } from './manifests.js';

const log = logger.child({ module: 'cluster.publisher' });

/**
 * Cluster mode's publisher: server-side applies the `podgate-crl` Secret (crl.pem + revocations.json)
 * that the agent sidecar watches. RevocationService calls it after every revocation and CRL re-sign.
 */
export class SecretCrlPublisher implements CrlPublisher {
  readonly name = 'k8s-secret';
  /** `kube` may be a factory: the client is then made on the first publish (no cluster needed before). */
  constructor(
    private readonly kube: KubeApi | (() => KubeApi),
    private readonly namespace: string,
  ) {}

  async publish(bundle: RevocationBundle): Promise<void> {
    const kube = typeof this.kube === 'function' ? this.kube() : this.kube;
    const stored = await kube.apply(crlSecret(this.namespace, bundle));
    log.info(
      { crlNumber: bundle.crlNumber, resourceVersion: stored.metadata.resourceVersion },
      'CRL Secret published',
    );
  }
}

/**
 * The Secret publisher for the composition root, when podgate manages a cluster: a kubeconfig is
 * configured (kubernetes.kubeconfig) or podgate runs in a pod (the k8s/ base). Otherwise undefined, so
 * that local mode does not log a failing publish after every revocation. The client is made on first use.
 */
export function clusterPublisherFor(config: Config, env: NodeJS.ProcessEnv): SecretCrlPublisher | undefined {
  if (!config.kubernetes.kubeconfig && !env.KUBERNETES_SERVICE_HOST) return undefined;
  let kube: KubeApi | undefined;
  return new SecretCrlPublisher(
    () => (kube ??= createKubeApi(loadKubeConfig(config.kubernetes))),
    config.kubernetes.namespace,
  );
}
