import type { NamespaceObject, PodObject, ServiceObject } from '../access/types.js';
import type { Config } from '../config/schema.js';
import type { ClusterObjects } from '../services/access-check.js';
import { KubeApiError, type KubeApi, type KubeObject } from './kube-api.js';
import { Forbidden } from '../lib/errors.js';
import { namespaceShape, podShape, serviceShape } from './access-watch.js';
import type { KubeConnection } from './kube-connection.js';

const CACHE_MS = 5_000;

// One reading of cluster objects for the manager's view and the agent's watch (access-watch.ts): a pod
// that Succeeded or Failed has no address there either (it may already be another pod's).
export { namespaceShape as toNamespace, podShape as toPod, serviceShape as toService };

/**
 * The manager's read-only view of namespaces, Services and pods, for `access check` and the Access
 * page (labels for selectors, the owner of an address). Listed on demand and kept 5 s; the agent keeps
 * its own live watch for enforcement. `api` may be a factory (the client is made on first use).
 */
export class KubeClusterObjects implements ClusterObjects {
  private cache = new Map<string, { at: number; items: Promise<KubeObject[]> }>();
  constructor(
    private readonly api: () => Promise<KubeApi>,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  close(): Promise<void> {
    return this.onClose();
  }

  private list(kind: string): Promise<KubeObject[]> {
    const hit = this.cache.get(kind);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.items;
    const items = this.api()
      .then((api) => api.list('v1', kind))
      .then(
        (l) => l?.items ?? [],
        (err: unknown) => {
          throw err instanceof KubeApiError && err.kubeStatus === 403 ? deniedRead(kind, err) : err;
        },
      );
    items.catch(() => this.cache.delete(kind));
    this.cache.set(kind, { at: Date.now(), items });
    return items;
  }

  async namespaces(): Promise<NamespaceObject[]> {
    return (await this.list('Namespace')).map(namespaceShape);
  }
  async services(): Promise<ServiceObject[]> {
    return (await this.list('Service')).map(serviceShape);
  }
  async pods(): Promise<PodObject[]> {
    return (await this.list('Pod')).map(podShape);
  }
}

/**
 * The manager holds no cluster-wide reads by default (k8s/README.md): `access check` and the Access page
 * then need the optional ClusterRole in k8s/rbac-access-view.yaml to look up pods and Services.
 */
function deniedRead(kind: string, cause: KubeApiError): Forbidden {
  const plural = `${kind.toLowerCase()}s`;
  const err = new Forbidden(
    `the manager may not list ${plural} cluster-wide (${cause.kubeMessage}); to let access check and the ` +
      'Access page look up cluster objects, an admin runs `kubectl apply -f k8s/rbac-access-view.yaml` ' +
      '(see k8s/README.md)',
  );
  err.cause = cause;
  return err;
}

/** The view for the composition root when a cluster is configured (kubeconfig, or in a pod). */
export function clusterObjectsFor(config: Config, env: NodeJS.ProcessEnv): ClusterObjects | undefined {
  if (!config.kubernetes.kubeconfig && !env.KUBERNETES_SERVICE_HOST) return undefined;
  let connection: Promise<KubeConnection> | undefined;
  // loaded on first use: the Kubernetes client costs start-up time every CLI command would pay
  const open = () => (connection ??= import('./kube-connection.js').then((m) => m.connectKube(config, env)));
  return new KubeClusterObjects(
    async () => (await open()).api,
    async () => {
      const c = connection;
      connection = undefined;
      if (c) await (await c).close();
    },
  );
}
