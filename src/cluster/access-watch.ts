/**
 * The agent's view of the live cluster for access rules: Namespaces, Pods and Services, listed then
 * watched cluster-wide (read-only rights: ClusterRole `podgate-agent-access`) on the shared list-watch
 * loop, turned into the small shapes of access/types.ts and handed over as ClusterEvents.
 *
 * - Nothing is handed over until all three kinds have been listed once; then one `resync-start`, every
 *   object, `resync-done`. Until then an enforcer has no cluster view and allows only DNS.
 * - After that, each change the watches see becomes an `upsert` or `delete`, emitted as soon as the
 *   watch event arrives; a change that leaves podgate's shape as it was (a pod's conditions, a
 *   Service's status) emits nothing.
 * - A re-list of one kind (410 Gone, an error, a half-open connection) emits `resync-start`, the whole
 *   current view (the new list for that kind, the kept objects of the other two), `resync-done`: the
 *   consumer drops whatever it was not given again, e.g. a pod deleted while the watch was down.
 *
 * EndpointSlices are not watched: the pods behind a Service follow from its selector and the pods'
 * labels (as the EndpointSlice controller computes them), a named targetPort from the pods' declared
 * container ports, and ClusterIP traffic is matched on the ClusterIP itself (kube-proxy translates on
 * the node, after the packet has left the server pod). Slices would double the watch traffic (every
 * readiness change rewrites one) for the pods of selector-less Services only.
 */
import type {
  ClusterEvent,
  ClusterObjectSource,
  ContainerPort,
  NamespaceObject,
  PodObject,
  ServiceObject,
} from '../access/types.js';
import { logger } from '../lib/logger.js';
import type { KubeApi, KubeObject } from './kube-api.js';
import { ListWatch, type ChangeType } from './list-watch.js';

const log = logger.child({ module: 'cluster.access-watch' });

type Kind = 'namespace' | 'pod' | 'service';
const KINDS: readonly { kind: Kind; apiKind: string }[] = [
  { kind: 'namespace', apiKind: 'Namespace' },
  { kind: 'pod', apiKind: 'Pod' },
  { kind: 'service', apiKind: 'Service' },
];

type Shape = NamespaceObject | PodObject | ServiceObject;

interface Meta {
  name?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
}

const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);
const protocolOf = (p: unknown): 'TCP' | 'UDP' | 'SCTP' =>
  PROTOCOLS.has(String(p)) ? (String(p) as 'TCP' | 'UDP' | 'SCTP') : 'TCP';

export function namespaceShape(obj: KubeObject): NamespaceObject {
  const m = obj.metadata as Meta;
  return { name: m.name ?? '', labels: { ...(m.labels ?? {}) } };
}

/**
 * A pod as rules see it. No addresses for hostNetwork pods (the node's address is not the pod's to
 * grant) and for pods that Succeeded or Failed: the kubelet has torn their sandbox down, so the address
 * their status still shows may already belong to a new pod in another namespace.
 */
export function podShape(obj: KubeObject): PodObject {
  const m = obj.metadata as Meta;
  const spec = (obj.spec ?? {}) as {
    hostNetwork?: boolean;
    containers?: { ports?: { name?: string; containerPort?: number; protocol?: string }[] }[];
  };
  const status = (obj.status ?? {}) as { phase?: string; podIP?: string; podIPs?: { ip?: string }[] };
  const finished = status.phase === 'Succeeded' || status.phase === 'Failed';
  const ips =
    spec.hostNetwork || finished
      ? []
      : (status.podIPs?.map((p) => p.ip ?? '') ?? (status.podIP ? [status.podIP] : [])).filter(Boolean);
  const containerPorts: ContainerPort[] = [];
  for (const c of spec.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (typeof p.containerPort !== 'number') continue;
      containerPorts.push({
        ...(p.name ? { name: p.name } : {}),
        protocol: protocolOf(p.protocol),
        port: p.containerPort,
      });
    }
  }
  return {
    uid: m.uid ?? '',
    namespace: m.namespace ?? '',
    name: m.name ?? '',
    labels: { ...(m.labels ?? {}) },
    ips,
    ...(containerPorts.length ? { containerPorts } : {}),
  };
}

export function serviceShape(obj: KubeObject): ServiceObject {
  const m = obj.metadata as Meta;
  const spec = (obj.spec ?? {}) as {
    type?: string;
    clusterIP?: string;
    clusterIPs?: string[];
    selector?: Record<string, string>;
    ports?: { port?: number; protocol?: string; targetPort?: number | string }[];
  };
  const ips =
    spec.type === 'ExternalName' ? [] : (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []));
  return {
    namespace: m.namespace ?? '',
    name: m.name ?? '',
    labels: { ...(m.labels ?? {}) },
    clusterIPs: ips.filter((ip) => ip && ip !== 'None'),
    ports: (spec.ports ?? [])
      .filter((p) => typeof p.port === 'number')
      .map((p) => ({
        protocol: protocolOf(p.protocol),
        port: p.port!,
        ...(p.targetPort !== undefined && p.targetPort !== '' ? { targetPort: p.targetPort } : {}),
      })),
    selector: spec.selector && Object.keys(spec.selector).length > 0 ? { ...spec.selector } : null,
  };
}

function keyOf(kind: Kind, obj: KubeObject): string {
  const m = obj.metadata as Meta;
  if (kind === 'namespace') return m.name ?? '';
  if (kind === 'pod') return m.uid ?? '';
  return `${m.namespace ?? ''}/${m.name ?? ''}`;
}

function shapeOf(kind: Kind, obj: KubeObject): Shape {
  if (kind === 'namespace') return namespaceShape(obj);
  if (kind === 'pod') return podShape(obj);
  return serviceShape(obj);
}

function upsert(kind: Kind, object: Shape): ClusterEvent {
  return { type: 'upsert', kind, object } as ClusterEvent;
}

function remove(kind: Kind, key: string): ClusterEvent {
  if (kind === 'namespace') return { type: 'delete', kind, name: key };
  if (kind === 'pod') return { type: 'delete', kind, uid: key };
  const slash = key.indexOf('/');
  return { type: 'delete', kind, namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export interface ClusterAccessWatchOptions {
  kube: KubeApi;
  /** First retry delay after an error; doubles up to 10 s. Default 500 ms. */
  retryMs?: number;
  /** Each watch asks the server to end it after this long. Default 5 min. */
  resyncMs?: number;
}

/** The real ClusterObjectSource: see the file header. */
export class ClusterAccessWatch implements ClusterObjectSource {
  private readonly views = new Map<Kind, Map<string, { shape: Shape; text: string }>>();
  private readonly listed = new Set<Kind>();
  private readonly loops = new Map<Kind, ListWatch>();
  private onEvent: ((e: ClusterEvent) => void) | undefined;
  private synced = false;
  /** How many times each event type was emitted (tests and the agent's status). */
  readonly counts = { upserts: 0, deletes: 0, resyncs: 0 };

  constructor(private readonly o: ClusterAccessWatchOptions) {
    for (const { kind } of KINDS) this.views.set(kind, new Map());
  }

  start(onEvent: (e: ClusterEvent) => void): void {
    this.onEvent = onEvent;
    for (const { kind, apiKind } of KINDS) {
      const loop = new ListWatch({
        kube: this.o.kube,
        apiVersion: 'v1',
        kind: apiKind,
        retryMs: this.o.retryMs,
        resyncMs: this.o.resyncMs,
        onList: (items) => this.listedKind(kind, items),
        onChange: (type, obj) => this.changed(kind, type, obj),
      });
      this.loops.set(kind, loop);
      loop.begin();
    }
  }

  async stop(): Promise<void> {
    for (const loop of this.loops.values()) loop.stop();
    this.loops.clear();
    this.onEvent = undefined;
  }

  /** True once every kind was listed and the first resync handed over. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** Lists, watches, bookmarks, 410s and errors per kind. */
  stats(): Record<Kind, ListWatch['stats']> {
    const out = {} as Record<Kind, ListWatch['stats']>;
    for (const [kind, loop] of this.loops) out[kind] = { ...loop.stats };
    return out;
  }

  private emit(e: ClusterEvent): void {
    if (e.type === 'upsert') this.counts.upserts++;
    else if (e.type === 'delete') this.counts.deletes++;
    else if (e.type === 'resync-done') this.counts.resyncs++;
    try {
      this.onEvent?.(e);
    } catch (err) {
      log.error({ err, event: e.type }, 'cluster event consumer threw');
    }
  }

  private listedKind(kind: Kind, items: KubeObject[]): void {
    const view = new Map<string, { shape: Shape; text: string }>();
    for (const obj of items) {
      const shape = shapeOf(kind, obj);
      view.set(keyOf(kind, obj), { shape, text: JSON.stringify(shape) });
    }
    this.views.set(kind, view);
    this.listed.add(kind);
    if (this.listed.size < KINDS.length) return; // the first full view waits for every kind
    if (this.synced) log.info({ kind, objects: items.length }, 're-listed; handing over the whole view');
    this.synced = true;
    this.emit({ type: 'resync-start' });
    for (const { kind: k } of KINDS)
      for (const { shape } of this.views.get(k)!.values()) this.emit(upsert(k, shape));
    this.emit({ type: 'resync-done' });
  }

  private changed(kind: Kind, type: ChangeType, obj: KubeObject): void {
    const view = this.views.get(kind)!;
    const key = keyOf(kind, obj);
    if (!key) return;
    if (type === 'DELETED') {
      if (view.delete(key) && this.synced) this.emit(remove(kind, key));
      return;
    }
    const shape = shapeOf(kind, obj);
    const text = JSON.stringify(shape);
    if (view.get(key)?.text === text) return;
    view.set(key, { shape, text });
    if (this.synced) this.emit(upsert(kind, shape));
  }
}
