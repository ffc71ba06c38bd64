import type { AccessBundle } from '../access/types.js';
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import type { KubeApi, KubeObject } from './kube-api.js';
import { ACCESS_SECRET_KEYS, LABELS, OBJECT_NAMES } from './pod-layout.js';
import { applyUnlessNewer } from './secret-publisher.js';

const log = logger.child({ module: 'cluster.access-publisher' });
/** Below Kubernetes' 1 MiB per Secret, with room for metadata. */
const ACCESS_SECRET_LIMIT_BYTES = 900 * 1024;

/** The `podgate-access` Secret holding one bundle (data key `access.json`). */
export function accessSecret(namespace: string, bundle: AccessBundle): KubeObject {
  const json = JSON.stringify(bundle);
  const bytes = Buffer.byteLength(json);
  if (bytes > ACCESS_SECRET_LIMIT_BYTES) {
    throw new AppError(
      413,
      'access_too_large',
      `the ${OBJECT_NAMES.accessSecret} Secret would hold ${bytes} bytes (${bundle.clients.length} devices, ${bundle.rules.length} rules), over podgate's ${ACCESS_SECRET_LIMIT_BYTES}-byte limit below Kubernetes' 1 MiB per Secret; nothing was published`,
    );
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: OBJECT_NAMES.accessSecret, namespace, labels: { ...LABELS } },
    type: 'Opaque',
    data: { [ACCESS_SECRET_KEYS.bundle]: Buffer.from(json, 'utf8').toString('base64') },
  };
}

/** The version of the bundle a podgate-access Secret holds, or undefined when it holds none that reads. */
export function accessVersionOf(secret: KubeObject | undefined): number | undefined {
  const raw = (secret?.data as Record<string, string> | undefined)?.[ACCESS_SECRET_KEYS.bundle];
  if (!raw) return undefined;
  try {
    const v = (JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as { version?: unknown }).version;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Applies the podgate-access Secret unless it already holds a higher version (read, compare, apply
 * with the resourceVersion read as precondition: see applyUnlessNewer).
 */
export async function applyAccessSecret(
  kube: KubeApi,
  namespace: string,
  bundle: AccessBundle,
): Promise<{ stored: KubeObject; written: boolean }> {
  return applyUnlessNewer(kube, accessSecret(namespace, bundle), {
    what: `access bundle ${bundle.version}`,
    holdsNewer: (live) => {
      const held = accessVersionOf(live);
      if (held === undefined || held <= bundle.version) return false;
      log.info(
        { version: bundle.version, newerVersion: held },
        'access Secret holds a newer bundle; not replaced',
      );
      return true;
    },
  }).then((r) => {
    if (r.written) log.info({ version: bundle.version }, 'access Secret published');
    return r;
  });
}
