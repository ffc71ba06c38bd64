/**
 * Session history in cluster mode, both ends of it. In the server pod, ConfigMapSessionsReporter reads
 * openvpn's `status 3` every `everyMs` and writes it under its own key `sessions.<pod>` of the agent's
 * status ConfigMap (the only object the agent may write). In the manager, syncSessionReadings hands
 * each new reading to a SessionSink (services/usage.ts: the same recorder `server run` uses, replica
 * `pod/<pod>`), and ends the sessions of a pod whose readings stopped (the pod is gone), then removes
 * its key. The bytes of the last interval before a session ends are not seen, as in local mode.
 */
import { logger } from '../lib/logger.js';
import { repeat, systemClock, type Clock, type Timer } from '../lib/clock.js';
import { withManagement, type ManagementOptions } from '../openvpn/management-client.js';
import type { ClientSession } from '../openvpn/status.js';
import type { KubeApi } from './kube-api.js';
import { statusRef } from './agent-status.js';

const log = logger.child({ module: 'cluster.agent-sessions' });

/** Keys of the status ConfigMap that hold one pod's latest reading. */
export const SESSIONS_KEY_PREFIX = 'sessions.';

/** The replica name a pod's sessions are recorded under. */
export function podReplica(pod: string): string {
  return `pod/${pod}`;
}

/** One `status 3` reading as the ConfigMap carries it. */
export interface SessionsReading {
  at: string;
  /** How often the agent reads: the manager calls a pod gone after three missed readings. */
  everyMs: number;
  clients: {
    clientId: number;
    commonName: string;
    realAddress: string;
    virtualAddress: string;
    connectedSince: string;
    bytesIn: number;
    bytesOut: number;
  }[];
}

/** Where the manager records readings (UsageService). */
export interface SessionSink {
  recordReading(replica: string, clients: ClientSession[], at: Date): void;
  closeReplica(replica: string, reason: 'server-stop'): number;
}

export function toReading(clients: readonly ClientSession[], at: Date, everyMs: number): SessionsReading {
  return {
    at: at.toISOString(),
    everyMs,
    clients: clients.map((c) => ({
      clientId: c.clientId,
      commonName: c.commonName,
      realAddress: c.realAddress,
      virtualAddress: c.virtualAddress,
      connectedSince: c.connectedSince.toISOString(),
      bytesIn: c.bytesReceived,
      bytesOut: c.bytesSent,
    })),
  };
}

function fromReading(r: SessionsReading): ClientSession[] {
  return r.clients.map((c) => ({
    clientId: c.clientId,
    commonName: c.commonName,
    realAddress: c.realAddress,
    virtualAddress: c.virtualAddress,
    virtualIpv6Address: '',
    connectedSince: new Date(c.connectedSince),
    bytesReceived: c.bytesIn,
    bytesSent: c.bytesOut,
    username: '',
    peerId: 0,
    cipher: '',
  }));
}

function isReading(v: unknown): v is SessionsReading {
  const r = v as SessionsReading | undefined;
  return (
    !!r &&
    typeof r.at === 'string' &&
    !Number.isNaN(Date.parse(r.at)) &&
    typeof r.everyMs === 'number' &&
    Array.isArray(r.clients) &&
    r.clients.every(
      (c) =>
        Number.isInteger(c?.clientId) &&
        typeof c.commonName === 'string' &&
        typeof c.realAddress === 'string' &&
        typeof c.virtualAddress === 'string' &&
        !Number.isNaN(Date.parse(c.connectedSince)) &&
        Number.isFinite(c.bytesIn) &&
        Number.isFinite(c.bytesOut),
    )
  );
}

/** The readings in the ConfigMap's data, by pod; a key that does not parse is left out (and logged). */
export function parseReadings(data: Record<string, string>): Map<string, SessionsReading> {
  const out = new Map<string, SessionsReading>();
  for (const [k, v] of Object.entries(data)) {
    if (!k.startsWith(SESSIONS_KEY_PREFIX)) continue;
    const pod = k.slice(SESSIONS_KEY_PREFIX.length);
    try {
      const r: unknown = JSON.parse(v);
      if (isReading(r)) out.set(pod, r);
      else log.warn({ pod }, 'session reading has an unexpected shape; ignored');
    } catch {
      log.warn({ pod }, 'session reading is not JSON; ignored');
    }
  }
  return out;
}

/** `status 3` over one short management connection (openvpn serves one client at a time). */
export function managementStatus(opts: ManagementOptions): () => Promise<readonly ClientSession[]> {
  return async () => (await withManagement(opts, (m) => m.status())).clients;
}

/** The agent's side: reads `status 3` and publishes it under `sessions.<pod>`. */
export class ConfigMapSessionsReporter {
  private timer: Timer | undefined;

  constructor(
    private readonly o: {
      kube: KubeApi;
      namespace: string;
      podName: string;
      /** openvpn's live sessions (`status 3`); the agent: managementStatus(opts). */
      status: () => Promise<readonly ClientSession[]>;
      everyMs: number;
      clock?: Clock;
    },
  ) {}

  /** One reading, written at once (also what each tick does). */
  async report(): Promise<void> {
    const clock = this.o.clock ?? systemClock;
    const reading = toReading(await this.o.status(), clock.now(), this.o.everyMs);
    await this.o.kube.mergePatch(statusRef(this.o.namespace), {
      data: { [`${SESSIONS_KEY_PREFIX}${this.o.podName}`]: JSON.stringify(reading) },
    });
  }

  start(): void {
    this.timer = repeat(this.o.clock ?? systemClock, this.o.everyMs, () => this.report(), {
      onError: (err) => log.warn({ err: String(err) }, 'session reading not reported'),
    });
  }

  stop(): void {
    this.timer?.cancel();
  }
}

/**
 * The manager's side, once per poll of the status ConfigMap: each reading newer than the last one seen
 * for its pod goes to the sink; a pod whose reading is older than three of its intervals (plus a
 * minute) is gone: its open sessions end (`server-stop`) and its key is removed. `seen` is the
 * caller's memory of the last reading per pod (a restarted manager records the latest one again,
 * which the store takes as an update of the same sessions).
 */
export async function syncSessionReadings(
  kube: KubeApi,
  namespace: string,
  data: Record<string, string>,
  sink: SessionSink,
  seen: Map<string, string>,
  now: Date,
): Promise<{ recorded: string[]; gone: string[] }> {
  const recorded: string[] = [];
  const gone: string[] = [];
  for (const [pod, r] of parseReadings(data)) {
    const replica = podReplica(pod);
    if (now.getTime() - Date.parse(r.at) > 3 * r.everyMs + 60_000) {
      sink.closeReplica(replica, 'server-stop');
      await kube.mergePatch(statusRef(namespace), { data: { [`${SESSIONS_KEY_PREFIX}${pod}`]: null } });
      seen.delete(pod);
      gone.push(pod);
      continue;
    }
    if (seen.get(pod) === r.at) continue;
    sink.recordReading(replica, fromReading(r), new Date(r.at));
    seen.set(pod, r.at);
    recorded.push(pod);
  }
  if (gone.length > 0) log.info({ pods: gone }, 'server pods gone: their open sessions ended');
  return { recorded, gone };
}
