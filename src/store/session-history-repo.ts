import type { Database, Statement } from 'better-sqlite3';
import { fromIso, fromIsoOrNull, nonEmpty, toIso, type Sync } from './sql-util.js';

/**
 * Why a VPN session ended, as far as podgate can know it from the management interface's `status`:
 * `revoked` (its certificate is revoked), `disabled` (its owner is disabled), `server-restart` (openvpn
 * or `server run` restarted, or crashed, while it was open), `server-stop` (`server run` stopped), and
 * `ended` for everything the status list cannot tell apart: the client quit, its keepalive timed out,
 * its network went away, or an administrator disconnected it.
 */
export type SessionEndReason = 'revoked' | 'disabled' | 'server-restart' | 'server-stop' | 'ended';

/** One openvpn session as read from `status 3`, with the owner and device it belongs to. */
export interface LiveSessionSample {
  clientId: number;
  commonName: string;
  serial: string | null;
  userName: string | null;
  deviceName: string | null;
  realAddress: string;
  virtualAddress: string;
  startedAt: Date;
  bytesIn: number;
  bytesOut: number;
}

export interface SessionHistoryRecord extends LiveSessionSample {
  id: number;
  replica: string;
  lastSeenAt: Date;
  endedAt: Date | null;
  endReason: SessionEndReason | null;
}

export interface SessionHistoryQuery {
  user?: string;
  commonName?: string;
  /** Sessions that were open at some time at or after this. */
  since?: Date;
  limit?: number;
}

/** Per day (UTC) and user + device: bytes and how many sessions started that day. */
export interface UsageDay {
  day: string;
  userName: string;
  commonName: string;
  sessions: number;
  bytesIn: number;
  bytesOut: number;
}

export interface SessionHistoryStore {
  /** Inserts new sessions and updates the bytes and last-seen time of the ones already recorded. */
  recordSessions(replica: string, samples: readonly LiveSessionSample[], at: Date): Promise<void>;
  /** Sessions of `replica` not yet ended. */
  listOpenSessions(replica: string): Promise<SessionHistoryRecord[]>;
  /** Ends one recorded session; `endedAt` defaults to its last-seen time. */
  endSession(id: number, reason: SessionEndReason, endedAt?: Date): Promise<void>;
  /** Newest first. */
  listSessionHistory(q?: SessionHistoryQuery): Promise<SessionHistoryRecord[]>;
  /** Bytes per day are counted on the day the session started (a session is not split across days). */
  usageByDay(since: Date, user?: string): Promise<UsageDay[]>;
  /** Deletes ended sessions that ended before `before`; returns how many. */
  pruneSessionHistory(before: Date): Promise<number>;
}

/** A vpn_sessions row, as both engines return it. */
export interface SessionRow {
  id: number;
  replica: string;
  client_id: number;
  common_name: string;
  serial: string | null;
  user_name: string | null;
  device_name: string | null;
  real_address: string;
  virtual_address: string;
  started_at: string;
  last_seen_at: string;
  ended_at: string | null;
  bytes_in: number;
  bytes_out: number;
  end_reason: string | null;
}

export function toSessionRecord(r: SessionRow): SessionHistoryRecord {
  return {
    id: r.id,
    replica: r.replica,
    clientId: r.client_id,
    commonName: r.common_name,
    serial: r.serial,
    userName: r.user_name,
    deviceName: r.device_name,
    realAddress: r.real_address,
    virtualAddress: r.virtual_address,
    startedAt: fromIso(r.started_at),
    lastSeenAt: fromIso(r.last_seen_at),
    endedAt: fromIsoOrNull(r.ended_at),
    bytesIn: r.bytes_in,
    bytesOut: r.bytes_out,
    endReason: r.end_reason as SessionEndReason | null,
  };
}

const bytes = (n: number): number => (Number.isSafeInteger(n) && n >= 0 ? n : 0);

/** The named parameters of each sample's upsert (checked: replica and times; byte counts never negative). */
export function sampleParams(
  replica: string,
  samples: readonly LiveSessionSample[],
  at: Date,
): Record<string, string | number | null>[] {
  const r = nonEmpty('replica', replica);
  const t = toIso('at', at);
  return samples.map((s) => ({
    replica: r,
    clientId: s.clientId,
    commonName: s.commonName,
    serial: s.serial,
    userName: s.userName,
    deviceName: s.deviceName,
    realAddress: s.realAddress,
    virtualAddress: s.virtualAddress,
    startedAt: toIso('startedAt', s.startedAt),
    at: t,
    bytesIn: bytes(s.bytesIn),
    bytesOut: bytes(s.bytesOut),
  }));
}

/** The listSessionHistory statement (`?` placeholders, the same text on both engines). */
export function historyQuery(q: SessionHistoryQuery): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.user !== undefined) {
    where.push('user_name = ?');
    params.push(q.user);
  }
  if (q.commonName !== undefined) {
    where.push('common_name = ?');
    params.push(q.commonName);
  }
  if (q.since !== undefined) {
    where.push('coalesce(ended_at, last_seen_at) >= ?');
    params.push(toIso('since', q.since));
  }
  const limit = Math.max(1, Math.min(q.limit ?? 1000, 100_000));
  const sql = `SELECT * FROM vpn_sessions ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
    ORDER BY started_at DESC, id DESC LIMIT ${limit}`;
  return { sql, params };
}

/** A usageByDay row (the GROUP BY differs per engine, the columns do not). */
export interface UsageRow {
  day: string;
  user_name: string;
  common_name: string;
  sessions: number;
  bytes_in: number;
  bytes_out: number;
}

export const toUsageDay = (r: UsageRow): UsageDay => ({
  day: r.day,
  userName: r.user_name,
  commonName: r.common_name,
  sessions: r.sessions,
  bytesIn: r.bytes_in,
  bytesOut: r.bytes_out,
});

export class SqliteSessionHistory implements Sync<SessionHistoryStore> {
  private readonly upsert: Statement;
  private readonly open: Statement;
  private readonly end: Statement;
  private readonly prune: Statement;

  constructor(
    private readonly db: Database,
    private readonly tx: <T>(fn: () => T) => T,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO vpn_sessions (replica, client_id, common_name, serial, user_name, device_name,
         real_address, virtual_address, started_at, last_seen_at, bytes_in, bytes_out)
       VALUES (@replica, @clientId, @commonName, @serial, @userName, @deviceName, @realAddress,
         @virtualAddress, @startedAt, @at, @bytesIn, @bytesOut)
       ON CONFLICT (replica, client_id, started_at) DO UPDATE SET last_seen_at = excluded.last_seen_at,
         bytes_in = max(bytes_in, excluded.bytes_in), bytes_out = max(bytes_out, excluded.bytes_out),
         virtual_address = excluded.virtual_address
       WHERE ended_at IS NULL`,
    );
    this.open = db.prepare('SELECT * FROM vpn_sessions WHERE replica = ? AND ended_at IS NULL ORDER BY id');
    this.end = db.prepare(
      'UPDATE vpn_sessions SET ended_at = coalesce(?, last_seen_at), end_reason = ? WHERE id = ? AND ended_at IS NULL',
    );
    this.prune = db.prepare('DELETE FROM vpn_sessions WHERE ended_at IS NOT NULL AND ended_at < ?');
  }

  recordSessions(replica: string, samples: readonly LiveSessionSample[], at: Date): void {
    const rows = sampleParams(replica, samples, at);
    this.tx(() => {
      for (const row of rows) this.upsert.run(row);
    });
  }

  listOpenSessions(replica: string): SessionHistoryRecord[] {
    return (this.open.all(replica) as SessionRow[]).map(toSessionRecord);
  }

  endSession(id: number, reason: SessionEndReason, endedAt?: Date): void {
    this.end.run(endedAt ? toIso('endedAt', endedAt) : null, reason, id);
  }

  listSessionHistory(q: SessionHistoryQuery = {}): SessionHistoryRecord[] {
    const { sql, params } = historyQuery(q);
    return (this.db.prepare(sql).all(...params) as SessionRow[]).map(toSessionRecord);
  }

  usageByDay(since: Date, user?: string): UsageDay[] {
    const params: unknown[] = [toIso('since', since)];
    if (user !== undefined) params.push(user);
    const rows = this.db
      .prepare(
        `SELECT substr(started_at, 1, 10) AS day, coalesce(user_name, '') AS user_name, common_name,
           count(*) AS sessions, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out
         FROM vpn_sessions WHERE started_at >= ? ${user !== undefined ? 'AND user_name = ?' : ''}
         GROUP BY day, user_name, common_name ORDER BY day, user_name, common_name`,
      )
      .all(...params) as UsageRow[];
    return rows.map(toUsageDay);
  }

  pruneSessionHistory(before: Date): number {
    return this.prune.run(toIso('before', before)).changes;
  }
}
