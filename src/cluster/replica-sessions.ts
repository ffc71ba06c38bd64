/**
 * The manager's side of replica-status.ts: live sessions of every server replica (a web
 * SessionsProvider), each named by its replica, and disconnecting one wherever it is.
 *
 * A session id outside the pod is `<cid>@<pod>`: openvpn's client ids restart at 0 in every process, so
 * the pod makes them unique; `@` needs no escaping in a URL path segment.
 */
import { randomBytes } from 'node:crypto';
import { NotFound, Upstream } from '../lib/errors.js';
import type { LiveSession } from '../openvpn/sessions-provider.js';
import type { KubeApi } from './kube-api.js';
import {
  DISCONNECT_PREFIX,
  readReplicas,
  ReplicaObserver,
  replicaLeaseRef,
  type ReplicaView,
} from './replica-status.js';

/** A live session with the replica (pod) that holds it. */
export interface ReplicaLiveSession extends LiveSession {
  replica: string;
}

export interface ReplicaSessionsOptions {
  kube: () => KubeApi;
  namespace: string;
  now?: () => Date;
  /** How long disconnect waits for the replica's answer (default 5 s) and how often it looks (250 ms). */
  timeoutMs?: number;
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function sessionId(cid: string, pod: string): string {
  return `${cid}@${pod}`;
}

export class ReplicaSessionsProvider {
  /** Staleness on this process's clock, not the replicas' (see ReplicaObserver). */
  private readonly observer = new ReplicaObserver();

  constructor(private readonly o: ReplicaSessionsOptions) {}

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** Every replica's report (stale ones included, flagged). */
  async replicas(): Promise<ReplicaView[]> {
    const now = this.now();
    return this.observer.judge(await readReplicas(this.o.kube(), this.o.namespace, now), now);
  }

  /** Sessions of every replica whose report is fresh (a stale one may be gone with its clients). */
  async list(): Promise<ReplicaLiveSession[]> {
    const replicas = await this.replicas();
    return replicas
      .filter((r) => !r.stale)
      .flatMap((r) =>
        r.sessions.map((s) => ({
          ...s,
          cid: sessionId(s.cid, r.pod),
          replica: r.pod,
          connectedSince: new Date(s.connectedSince),
        })),
      );
  }

  /**
   * Asks the replica holding `id` (`<cid>@<pod>`) to end the session (`client-kill <cid> HALT`) and waits
   * for its answer. NotFound when no fresh replica reports that session; Upstream when the replica does
   * not answer in time or fails.
   */
  async disconnect(id: string): Promise<void> {
    const m = /^(\d{1,10})@([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)$/.exec(id);
    if (!m) throw new NotFound(`no live session with id ${id}`);
    const [, cid, pod] = m as unknown as [string, string, string];
    const replica = (await this.replicas()).find((r) => r.pod === pod && !r.stale);
    if (!replica?.sessions.some((s) => s.cid === cid)) throw new NotFound(`no live session with id ${id}`);
    const request = randomBytes(8).toString('hex');
    const kube = this.o.kube();
    await kube.mergePatch(replicaLeaseRef(this.o.namespace, pod), {
      metadata: { annotations: { [`${DISCONNECT_PREFIX}${cid}`]: request } },
    });
    const deadline = Date.now() + (this.o.timeoutMs ?? 5000);
    while (Date.now() < deadline) {
      await sleep(this.o.pollMs ?? 250);
      const now = (await this.replicas()).find((r) => r.pod === pod);
      const result = now?.handled[request];
      if (result === undefined) continue;
      if (result === 'ok') return;
      if (result === 'not-found') throw new NotFound(`no live session with id ${id}`);
      throw new Upstream(`replica ${pod} could not end session ${cid}: ${result}`);
    }
    throw new Upstream(
      `replica ${pod} did not answer the disconnect request within ${this.o.timeoutMs ?? 5000} ms`,
    );
  }
}
