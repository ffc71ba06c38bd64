import type { RevocationBundle } from '../openvpn/revocation-bundle.js';
import { AppError } from '../lib/errors.js';
import type { KubeObject } from './kube-api.js';
import { crlKeyIds, markOwner } from './ownership.js';
import { CRL_SECRET_KEYS, LABELS, OBJECT_NAMES } from './pod-layout.js';

/** A Secret's data may hold 1 MiB (decoded); podgate stops well before, with a clear error. */
export const CRL_SECRET_LIMIT_BYTES = 900 * 1024;

/**
 * The podgate-crl Secret for a bundle: `crl.pem` and `revocations.json` (the bundle WITHOUT the CRL, which
 * is read back from crl.pem: storing it twice halved how many revocations fit). The Secret publisher
 * applies exactly this object with the same field manager, so deploy and publish never take fields
 * (labels) away from each other. Throws a 413 AppError naming the size when the data would not fit.
 */
export function crlSecret(namespace: string, bundle: RevocationBundle): KubeObject {
  const { crlPem, ...rest } = bundle;
  const json = JSON.stringify(rest);
  const bytes = Buffer.byteLength(crlPem) + Buffer.byteLength(json);
  if (bytes > CRL_SECRET_LIMIT_BYTES) {
    throw new AppError(
      413,
      'crl_too_large',
      `the podgate-crl Secret would hold ${bytes} bytes for ${bundle.revoked.length} revocations (CRL ${Buffer.byteLength(crlPem)} bytes), over podgate's ${CRL_SECRET_LIMIT_BYTES}-byte limit below Kubernetes' 1 MiB per Secret; nothing was published`,
    );
  }
  return markOwner(
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: OBJECT_NAMES.crlSecret, namespace, labels: { ...LABELS } },
      type: 'Opaque',
      data: {
        [CRL_SECRET_KEYS.crl]: Buffer.from(crlPem, 'utf8').toString('base64'),
        [CRL_SECRET_KEYS.bundle]: Buffer.from(json, 'utf8').toString('base64'),
      },
    },
    crlKeyIds(crlPem)[0],
  );
}
