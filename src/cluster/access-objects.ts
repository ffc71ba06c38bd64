import type { NamespaceObject, PodObject, ServiceObject } from '../access/types.js';
import type { Config } from '../config/schema.js';
import type { ClusterObjects } from '../services/access-check.js';
import type { KubeApi, KubeObject } from './kube-api.js';
import type { KubeConnection } from './kube-connection.js';

const CACHE_MS = 5_000;

type Spec = { [k: string]: unknown };
const labelsOf = (o: KubeObject) => ({ ...(o.metadata.labels ?? {}) });

export function toNamespace(o: KubeObject): NamespaceObject {
  return { name: o.metadata.name ?? '', labels: labelsOf(o) };
}

export function toService(o: KubeObject): ServiceObject {
  const spec = (o.spec ?? {}) as Spec;
  const ips = (spec.clusterIPs as string[] | undefined) ?? (spec.clusterIP ? [spec.clusterIP as string] : []);
  return {
    namespace: o.metadata.namespace ?? '',
    name: o.metadata.name ?? '',
    labels: labelsOf(o),
    clusterIPs: ips.filter((ip) => ip && ip !== 'None'),
    ports: ((spec.ports as { protocol?: string; port: number }[] | undefined) ?? []).map((p) => ({
      protocol: (p.protocol ?? 'TCP') as 'TCP' | 'UDP' | 'SCTP',
      port: p.port,
    })),
    selector: (spec.selector as Record<string, string> | undefined) ?? null,
  };
}

export function toPod(o: KubeObject): PodObject {
  const status = (o.status ?? {}) as Spec;
  const spec = (o.spec ?? {}) as Spec;
  const ips = spec.hostNetwork
    ? []
    : ((status.podIPs as { ip: string }[] | undefined) ?? []).map((p) => p.ip);
  return {
    uid: String(o.metadata.uid ?? ''),
    namespace: o.metadata.namespace ?? '',
    name: o.metadata.name ?? '',
    labels: labelsOf(o),
    ips,
  };
}

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
      .then((l) => l?.items ?? []);
    items.catch(() => this.cache.delete(kind));
    this.cache.set(kind, { at: Date.now(), items });
    return items;
  }

  async namespaces(): Promise<NamespaceObject[]> {
    return (await this.list('Namespace')).map(toNamespace);
  }
  async services(): Promise<ServiceObject[]> {
    return (await this.list('Service')).map(toService);
  }
  async pods(): Promise<PodObject[]> {
    return (await this.list('Pod')).map(toPod);
  }
}

/** The view for the composition root when a cluster is configured (kubeconfig, or in a pod). */
export function clusterObjectsFor(config: Config, env: NodeJS.ProcessEnv): ClusterObjects | undefined {
  if (!config.kubernetes.kubeconfig && !env.KUBERNETES_SERVICE_HOST) return undefined;
  let connection: Promise<KubeConnection> | undefined;
  // loaded on first use: the Kubernetes client costs start-up time every CLI command would pay
  const open = () => (connection ??= import('./kube-connection.js').then((m) => m.connectKube(config)));
  return new KubeClusterObjects(
    async () => (await open()).api,
    async () => {
      const c = connection;
      connection = undefined;
      if (c) await (await c).close();
    },
  );
}
