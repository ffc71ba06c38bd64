/**
 * Session history in cluster mode, the manager's side. Each server replica's agent reports its live
 * sessions in its own Lease (cluster/replica-status.ts: read every 5 s, written when anything but byte
 * counters changed and at least every 15 s); the same reports feed the sessions view, `podgate
 * sessions`, /metrics and this history, so there is one channel from the pods. ReplicaSessionHistory
 * hands each new report to a SessionSink (services/usage.ts: the recorder `server run` uses, replica
 * `pod/<pod>`) and ends the sessions of a replica that is gone: its Lease was deleted with its pod (the
 * garbage collector), or its report is older than REPLICA_GONE_MS. Byte counts are those of the last
 * report, as in local mode the last reading's.
 */
import { logger } from '../lib/logger.js';
import type { ClientSession } from '../openvpn/status.js';
import { REPLICA_STALE_MS, type ReplicaView } from './replica-status.js';

const log = logger.child({ module: 'cluster.agent-sessions' });

/** The replica name a pod's sessions are recorded under. */
export function podReplica(pod: string): string {
  return `pod/${pod}`;
}

const POD_PREFIX = 'pod/';

/** A report older than this ends its replica's sessions (a stale report is not listed; this is later). */
export const REPLICA_GONE_MS = REPLICA_STALE_MS + 60_000;

/** Where the manager records readings (UsageService). */
export interface SessionSink {
  recordReading(replica: string, clients: ClientSession[], at: Date): Promise<void>;
  closeReplica(replica: string, reason: 'server-stop'): Promise<number>;
  /** Replicas with sessions still open in the history (a manager restarted after a pod went). */
  openReplicas(): Promise<string[]>;
}

/** A replica's reported sessions in the recorder's form. */
export function reportedSessions(r: Pick<ReplicaView, 'sessions'>): ClientSession[] {
  return r.sessions.map((s) => ({
    clientId: Number(s.cid),
    commonName: s.commonName,
    realAddress: s.realAddress,
    virtualAddress: s.virtualAddress,
    virtualIpv6Address: '',
    connectedSince: new Date(s.connectedSince),
    bytesReceived: s.bytesIn,
    bytesSent: s.bytesOut,
    username: '',
    peerId: 0,
    cipher: '',
  }));
}

/**
 * The manager's memory between polls: the last report recorded per pod, and whether the history's open
 * replicas were read once (after a restart, a pod that went meanwhile still has open sessions).
 */
export class ReplicaSessionHistory {
  private readonly seen = new Map<string, string>();
  private known: Set<string> | undefined;

  constructor(private readonly sink: SessionSink) {}

  /** One poll: record each new report, end the sessions of replicas that are gone. */
  async sync(replicas: readonly ReplicaView[], now: Date): Promise<{ recorded: string[]; gone: string[] }> {
    if (!this.known)
      this.known = new Set(
        (await this.sink.openReplicas()).filter((r) => r.startsWith(POD_PREFIX)).map((r) => r.slice(4)),
      );
    const recorded: string[] = [];
    const gone: string[] = [];
    const listed = new Map(replicas.map((r) => [r.pod, r]));
    for (const pod of new Set([...this.known, ...this.seen.keys(), ...listed.keys()])) {
      const r = listed.get(pod);
      const at = r ? Date.parse(r.updatedAt) : NaN;
      if (!r || !(now.getTime() - at <= REPLICA_GONE_MS)) {
        if (!this.known.has(pod) && !this.seen.has(pod)) continue; // an old report never recorded
        await this.sink.closeReplica(podReplica(pod), 'server-stop');
        this.seen.delete(pod);
        this.known.delete(pod);
        gone.push(pod);
        continue;
      }
      if (this.seen.get(pod) === r.updatedAt) continue;
      await this.sink.recordReading(podReplica(pod), reportedSessions(r), new Date(at));
      this.seen.set(pod, r.updatedAt);
      this.known.add(pod);
      recorded.push(pod);
    }
    if (gone.length > 0) log.info({ pods: gone }, 'server pods gone: their open sessions ended');
    return { recorded, gone };
  }
}
