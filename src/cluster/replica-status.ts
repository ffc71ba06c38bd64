/**
 * Each server replica's report, through the API server: one `coordination.k8s.io/v1` Lease per pod,
 * `podgate-replica-<pod>`, owned by that pod (ownerReference: the garbage collector deletes it with the
 * pod), renewed by the pod's agent. The manager lists them (`k8s status`, the sessions view,
 * `podgate sessions`, /metrics) and asks a replica to end one of its sessions by adding an annotation
 * to that replica's Lease, which the agent reads within a second.
 *
 * Why a Lease per pod and not the manager calling each agent: the manager already reaches the API
 * server and nothing else in the cluster (it may run outside, through an SSH tunnel); an agent needs no
 * listening port, no certificate and no authentication of its own; a replica that is gone takes its
 * report with it; and the Lease's renewTime tells a stale report apart. Why a Lease and not a
 * ConfigMap: the agent must create objects whose names it only learns at start (its pod's), which RBAC
 * cannot restrict by name; a Lease grant cannot touch the server's ConfigMap (server.conf) or anything
 * else the pods read.
 */
import type { KubeApi, KubeObject, ObjectRef } from './kube-api.js';

/** Name prefix of the replica Leases (the pod name follows). */
export const REPLICA_LEASE_PREFIX = 'podgate-replica-';

/** Labels of the replica Leases (what the manager lists by). */
export const REPLICA_LABELS = {
  'app.kubernetes.io/name': 'podgate',
  'app.kubernetes.io/component': 'openvpn-replica',
  'app.kubernetes.io/managed-by': 'podgate',
} as const;

export const REPLICA_ANNOTATIONS = {
  /** The agent's report (JSON ReplicaReport). */
  status: 'podgate.io/replica-status',
} as const;

/** A disconnect request: annotation `disconnect.podgate.io/<cid>` = request id (the manager's). */
export const DISCONNECT_PREFIX = 'disconnect.podgate.io/';

/** A report older than this (the agent renews at least every 15 s) is stale: its replica is not answering. */
export const REPLICA_STALE_MS = 45_000;

/** One live session as a replica reports it. */
export interface ReplicaSession {
  cid: string;
  commonName: string;
  realAddress: string;
  virtualAddress: string;
  bytesIn: number;
  bytesOut: number;
  connectedSince: string;
}

/** What a replica's agent writes. */
export interface ReplicaReport {
  pod: string;
  /** CRL number in force in this pod (undefined: none yet; openvpn does not start without one). */
  crlNumber?: number;
  crlAppliedAt?: string;
  /** Access bundle version applied (undefined: none yet), and the access agent's state. */
  rulesVersion?: number;
  accessState?: string;
  /**
   * Packets the access policy dropped in this pod since its agent started (the nft table's counter;
   * undefined without access enforcement). Carried at the report's heartbeat, not on every change.
   */
  droppedPackets?: number;
  /** False when openvpn's management interface did not answer the last reading. */
  management: boolean;
  sessions: ReplicaSession[];
  /** Disconnect requests handled lately: request id → `ok` | `not-found` | `error: …`. */
  handled: Record<string, string>;
  updatedAt: string;
}

/** A replica as the manager sees it. */
export interface ReplicaView extends ReplicaReport {
  /** The report is older than REPLICA_STALE_MS (or unreadable). */
  stale: boolean;
  /** Pending disconnect requests (cid → request id). */
  requests: Record<string, string>;
}

export function replicaLeaseName(pod: string): string {
  return `${REPLICA_LEASE_PREFIX}${pod}`;
}

export function replicaLeaseRef(namespace: string, pod: string): ObjectRef {
  return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace, name: replicaLeaseName(pod) };
}

export const replicaSelector = Object.entries(REPLICA_LABELS)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

/** Kubernetes MicroTime: RFC 3339 with exactly six fraction digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The Lease the agent applies (server-side apply, field manager podgate). */
export function replicaLease(
  namespace: string,
  pod: { name: string; uid?: string },
  report: ReplicaReport,
  now: Date,
): KubeObject {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: replicaLeaseName(pod.name),
      namespace,
      labels: { ...REPLICA_LABELS },
      annotations: { [REPLICA_ANNOTATIONS.status]: JSON.stringify(report) },
      // No blockOwnerDeletion: setting it would need rights on the pod; the collector deletes it anyway.
      ...(pod.uid
        ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid }] }
        : {}),
    },
    spec: {
      holderIdentity: pod.name,
      leaseDurationSeconds: REPLICA_STALE_MS / 1000,
      renewTime: microTime(now),
    },
  };
}

/** Pending disconnect requests on a Lease: cid → request id. */
export function disconnectRequests(lease: KubeObject | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(lease?.metadata.annotations ?? {}))
    if (k.startsWith(DISCONNECT_PREFIX)) out[k.slice(DISCONNECT_PREFIX.length)] = v;
  return out;
}

/** A Lease read back; a report that does not parse is a stale replica with no sessions. */
export function replicaFromLease(lease: KubeObject, now: Date): ReplicaView {
  const pod = String((lease.spec as { holderIdentity?: string } | undefined)?.holderIdentity ?? '');
  const requests = disconnectRequests(lease);
  let report: ReplicaReport | undefined;
  try {
    const parsed = JSON.parse(
      lease.metadata.annotations?.[REPLICA_ANNOTATIONS.status] ?? '',
    ) as ReplicaReport;
    if (parsed && typeof parsed === 'object' && Array.isArray(parsed.sessions)) report = parsed;
  } catch {
    /* unreadable: stale below */
  }
  if (!report)
    return {
      pod: pod || (lease.metadata.name ?? '').slice(REPLICA_LEASE_PREFIX.length),
      management: false,
      sessions: [],
      handled: {},
      updatedAt: '',
      stale: true,
      requests,
    };
  const age = now.getTime() - Date.parse(report.updatedAt);
  return { ...report, handled: report.handled ?? {}, stale: !(age <= REPLICA_STALE_MS), requests };
}

/** Every replica's report in `namespace`, by pod name. */
export async function readReplicas(kube: KubeApi, namespace: string, now: Date): Promise<ReplicaView[]> {
  const list = await kube.list('coordination.k8s.io/v1', 'Lease', {
    namespace,
    labelSelector: replicaSelector,
  });
  return (list?.items ?? []).map((l) => replicaFromLease(l, now)).sort((a, b) => a.pod.localeCompare(b.pod));
}

/**
 * Tells stale reports apart on the reader's own clock. A replica stamps its report (`updatedAt`) with
 * its clock, and comparing that stamp with the reader's mixes two clocks: a replica whose clock runs
 * more than REPLICA_STALE_MS behind looks stale for ever (its sessions hidden, disconnects refused), one
 * that runs ahead looks fresh long after it died. A long-lived reader (the web app) keeps one of these:
 * a report is stale once its stamp has not changed for REPLICA_STALE_MS of the reader's clock. A report
 * seen for the first time can only be judged by its stamp (what a one-shot reader such as
 * `k8s status` does every time).
 */
export class ReplicaObserver {
  /** Per pod: the last stamp seen and since when (reader's clock) it has not changed. */
  private seen = new Map<string, { updatedAt: string; since: number }>();

  judge(replicas: ReplicaView[], now: Date): ReplicaView[] {
    const t = now.getTime();
    const next = new Map<string, { updatedAt: string; since: number }>();
    const out = replicas.map((r) => {
      if (!r.updatedAt) return r; // unreadable: stale already
      const prev = this.seen.get(r.pod);
      // first sight: as old as its stamp says, but never from the future
      const since = !prev
        ? Math.min(t, Date.parse(r.updatedAt))
        : prev.updatedAt === r.updatedAt
          ? prev.since
          : t;
      next.set(r.pod, { updatedAt: r.updatedAt, since });
      return { ...r, stale: !(t - since <= REPLICA_STALE_MS) };
    });
    this.seen = next; // replicas gone are forgotten
    return out;
  }
}
