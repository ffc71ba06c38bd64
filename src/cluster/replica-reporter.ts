/**
 * The agent's side of replica-status.ts: every second it reads its pod's Lease for disconnect requests
 * and carries them out; every 5 s it reads openvpn's sessions (and the access policy's drop counter), and
 * it applies its report when anything but those counters changed, or at least every 15 s (the heartbeat
 * the manager's staleness check needs, which also carries the counters).
 */
import { logger } from '../lib/logger.js';
import { systemClock, type Clock, type Timer } from '../lib/clock.js';
import { NotFound } from '../lib/errors.js';
import type { LiveSession } from '../openvpn/sessions-provider.js';
import type { KubeApi } from './kube-api.js';
import {
  DISCONNECT_PREFIX,
  disconnectRequests,
  replicaLease,
  replicaLeaseRef,
  type ReplicaReport,
  type ReplicaSession,
} from './replica-status.js';

const log = logger.child({ module: 'cluster.replica' });

/** What the report says besides sessions (read from the revocation and access agents). */
export interface ReplicaState {
  crlNumber?: number;
  crlAppliedAt?: string;
  rulesVersion?: number;
  accessState?: string;
}

export interface ReplicaReporterOptions {
  kube: KubeApi;
  namespace: string;
  pod: { name: string; uid?: string };
  state: () => ReplicaState;
  /** openvpn's live sessions and `client-kill <cid> HALT` (NotFound when no such session). */
  sessions: { list(): Promise<LiveSession[]>; disconnect(cid: string): Promise<void> };
  /** The access policy's drop counter in this pod (read with the sessions); absent: not reported. */
  dropped?: () => Promise<number>;
  clock?: Clock;
  /** Request poll, sessions reading and heartbeat periods (ms): default 1000, 5000, 15000. */
  pollMs?: number;
  sessionsMs?: number;
  heartbeatMs?: number;
}

/** How many handled request ids the report keeps (the manager waits for its own). */
const KEEP_HANDLED = 20;

export class ReplicaReporter {
  private timer: Timer | undefined;
  private stopped = false;
  private sessions: ReplicaSession[] = [];
  private management = false;
  private dropped: number | undefined;
  private droppedUnreadable = false;
  private handled: [string, string][] = [];
  private lastSessionsRead = 0;
  private lastWritten = 0;
  private lastKey = '';
  private readonly clock: Clock;

  constructor(private readonly o: ReplicaReporterOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /** Starts the loop (first round at once); errors are logged and the loop goes on. */
  start(): void {
    const round = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        await this.tick();
      } catch (err) {
        log.warn({ err: String(err) }, 'replica report failed');
      }
      if (!this.stopped) this.timer = this.clock.after(this.o.pollMs ?? 1000, round);
    };
    void round();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** One round: requests, then (when due) sessions, then (when changed or due) the report. */
  async tick(): Promise<void> {
    const ref = replicaLeaseRef(this.o.namespace, this.o.pod.name);
    const lease = await this.o.kube.get(ref);
    const requests = Object.entries(disconnectRequests(lease));
    const done = new Set(this.handled.map(([id]) => id));
    const fresh = requests.filter(([, id]) => !done.has(id));
    for (const [cid, id] of fresh) this.remember(id, await this.disconnect(cid));
    const now = this.clock.now().getTime();
    if (fresh.length > 0 || now - this.lastSessionsRead >= (this.o.sessionsMs ?? 5000)) {
      await this.readSessions();
      await this.readDropped();
      this.lastSessionsRead = now;
    }
    const report = this.report();
    // byte counters and the drop counter ride on the heartbeat: a busy tunnel does not rewrite the Lease
    const key = JSON.stringify({
      ...report,
      updatedAt: '',
      droppedPackets: undefined,
      sessions: report.sessions.map((s) => s.cid),
    });
    const due = now - this.lastWritten >= (this.o.heartbeatMs ?? 15_000);
    if (lease && key === this.lastKey && !due && requests.length === 0) return;
    await this.o.kube.apply(replicaLease(this.o.namespace, this.o.pod, report, this.clock.now()));
    this.lastWritten = now;
    this.lastKey = key;
    // Requests carried out leave the Lease (the report above already says how each went).
    if (requests.length > 0)
      await this.o.kube.mergePatch(ref, {
        metadata: {
          annotations: Object.fromEntries(requests.map(([cid]) => [`${DISCONNECT_PREFIX}${cid}`, null])),
        },
      });
  }

  private async disconnect(cid: string): Promise<string> {
    try {
      await this.o.sessions.disconnect(cid);
      log.info({ cid }, 'session disconnected on request');
      return 'ok';
    } catch (err) {
      if (err instanceof NotFound) return 'not-found';
      return `error: ${String(err instanceof Error ? err.message : err)}`;
    }
  }

  private remember(id: string, result: string): void {
    this.handled = [[id, result] as [string, string], ...this.handled].slice(0, KEEP_HANDLED);
  }

  private async readSessions(): Promise<void> {
    try {
      const list = await this.o.sessions.list();
      this.sessions = list.map((s) => ({
        cid: s.cid,
        commonName: s.commonName,
        realAddress: s.realAddress,
        virtualAddress: s.virtualAddress,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        connectedSince: s.connectedSince.toISOString(),
      }));
      this.management = true;
    } catch (err) {
      // openvpn not up yet (it waits for the CRL) or restarting: no sessions to report, say so.
      if (this.management) log.warn({ err: String(err) }, 'management interface not answering');
      this.sessions = [];
      this.management = false;
    }
  }

  private async readDropped(): Promise<void> {
    if (!this.o.dropped) return;
    try {
      this.dropped = await this.o.dropped();
      this.droppedUnreadable = false;
    } catch (err) {
      // the table not there yet (or nft failing): the last reading stays; said once, not every 5 s
      if (!this.droppedUnreadable) log.warn({ err: String(err) }, 'access drop counter not readable');
      this.droppedUnreadable = true;
    }
  }

  private report(): ReplicaReport {
    return {
      pod: this.o.pod.name,
      ...this.o.state(),
      ...(this.dropped !== undefined ? { droppedPackets: this.dropped } : {}),
      management: this.management,
      sessions: this.sessions,
      handled: Object.fromEntries(this.handled),
      updatedAt: this.clock.now().toISOString(),
    };
  }
}
