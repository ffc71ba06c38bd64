import { BadRequest } from '../lib/errors.js';
import { SessionRecorder } from '../openvpn/session-recorder.js';
import type { ClientSession } from '../openvpn/status.js';
import type { SessionHistoryRecord, Store, UsageDay } from '../store/types.js';

const DAY = 86_400_000;

/** "7d", "12h", "30m" or an ISO date → the time that long before `now` (or that date); 400 naming `field`. */
export function parseSince(field: string, value: string, now: Date): Date {
  const m = /^(\d{1,5})([dhm])$/.exec(value.trim());
  if (m) {
    const n = Number(m[1]);
    const unit = m[2] === 'd' ? DAY : m[2] === 'h' ? 3_600_000 : 60_000;
    return new Date(now.getTime() - n * unit);
  }
  const t = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(t)) return new Date(t);
  throw new BadRequest(
    `${field} must be a duration like 7d, 12h, 30m or an ISO date (got "${value}")`,
    field,
  );
}

/** One day of the chart: totals over every session that started that day (UTC). */
export interface ChartDay {
  day: string;
  sessions: number;
  bytes: number;
}

/** Per user or per device, over the period. */
export interface UsageTotal {
  key: string;
  sessions: number;
  bytesIn: number;
  bytesOut: number;
}

export interface UsageReport {
  since: Date;
  days: ChartDay[];
  byUser: UsageTotal[];
  byDevice: UsageTotal[];
}

function totals(rows: UsageDay[], key: (r: UsageDay) => string): UsageTotal[] {
  const m = new Map<string, UsageTotal>();
  for (const r of rows) {
    const k = key(r);
    const t = m.get(k) ?? { key: k, sessions: 0, bytesIn: 0, bytesOut: 0 };
    t.sessions += r.sessions;
    t.bytesIn += r.bytesIn;
    t.bytesOut += r.bytesOut;
    m.set(k, t);
  }
  return [...m.values()].sort((a, b) => b.bytesIn + b.bytesOut - (a.bytesIn + a.bytesOut));
}

/**
 * The session history: recorded from readings of openvpn's status (cluster mode: the pods' agents
 * report them in their replica Leases, see cluster/agent-sessions.ts; `server run` records its own), and read back as lists,
 * the 30-day report behind the admin chart, the CSV export.
 */
export class UsageService {
  private readonly recorders = new Map<string, SessionRecorder>();

  constructor(
    private readonly store: Store,
    private readonly now: () => Date,
  ) {}

  private recorder(replica: string): SessionRecorder {
    let r = this.recorders.get(replica);
    if (!r) this.recorders.set(replica, (r = new SessionRecorder(this.store, replica)));
    return r;
  }

  /** Records one reading of a replica's live sessions taken at `at` (sessions missing from it end). */
  async recordReading(replica: string, clients: readonly ClientSession[], at: Date): Promise<void> {
    await this.recorder(replica).record(clients, at);
  }

  /** Ends every open session of a replica that is gone; returns how many. */
  async closeReplica(replica: string, reason: 'server-restart' | 'server-stop'): Promise<number> {
    return await this.recorder(replica).closeAll(reason);
  }

  /** Replicas with sessions still open (cluster mode: a pod that went while the manager was down). */
  async openReplicas(): Promise<string[]> {
    const week = new Date(this.now().getTime() - 7 * 86_400_000);
    const open = (await this.store.listSessionHistory({ since: week, limit: 100_000 })).filter(
      (r) => r.endedAt === null,
    );
    return [...new Set(open.map((r) => r.replica))];
  }

  async history(q: { user?: string; since?: Date; limit?: number } = {}): Promise<SessionHistoryRecord[]> {
    return await this.store.listSessionHistory(q);
  }

  /** Every day of the last `days` days (UTC), zeros included, so the chart has no gaps. */
  async report(days = 30, user?: string): Promise<UsageReport> {
    const end = this.now();
    const start = new Date(
      Date.UTC(end.getUTCFullYear(), end.getUTCMonth(), end.getUTCDate()) - (days - 1) * DAY,
    );
    const rows = await this.store.usageByDay(start, user);
    const byDay = new Map<string, ChartDay>();
    for (let i = 0; i < days; i++) {
      const day = new Date(start.getTime() + i * DAY).toISOString().slice(0, 10);
      byDay.set(day, { day, sessions: 0, bytes: 0 });
    }
    for (const r of rows) {
      const d = byDay.get(r.day);
      if (!d) continue;
      d.sessions += r.sessions;
      d.bytes += r.bytesIn + r.bytesOut;
    }
    return {
      since: start,
      days: [...byDay.values()],
      byUser: totals(rows, (r) => r.userName || '(unknown)'),
      byDevice: totals(rows, (r) => r.commonName),
    };
  }
}

const CSV_COLUMNS = [
  'started_at',
  'ended_at',
  'user',
  'device',
  'common_name',
  'replica',
  'real_address',
  'tunnel_address',
  'bytes_in',
  'bytes_out',
  'end_reason',
] as const;

function csvCell(v: string): string {
  // A leading = + - @ would be a formula in a spreadsheet: quote it with a leading apostrophe.
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** RFC 4180 CSV of session records, one header line, CRLF line ends. */
export function sessionsCsv(rows: readonly SessionHistoryRecord[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) {
    lines.push(
      [
        r.startedAt.toISOString(),
        r.endedAt?.toISOString() ?? '',
        r.userName ?? '',
        r.deviceName ?? '',
        r.commonName,
        r.replica,
        r.realAddress,
        r.virtualAddress,
        String(r.bytesIn),
        String(r.bytesOut),
        r.endReason ?? '',
      ]
        .map(csvCell)
        .join(','),
    );
  }
  return lines.join('\r\n') + '\r\n';
}
