import type { CrlPublisher, RevocationBundle } from '../openvpn/revocation-bundle.js';
import { logger } from '../lib/logger.js';
import type { KubeApi } from './kube-api.js';
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
