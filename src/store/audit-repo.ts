import type { Database, Statement } from 'better-sqlite3';
import { fromIso, intAtLeast, nonEmpty, oneOf, text, toIso, toJsonObject, type Sync } from './sql-util.js';
import type { AuditEntry, AuditStore, NewAuditEntry } from './types.js';

const RESULTS: readonly AuditEntry['result'][] = ['ok', 'error', 'pending'];
const DEFAULT_LIMIT = 100;

/** The audit_log columns every read returns (both engines). */
export const AUDIT_COLS = 'id, time, actor, action, target, result, details';

/** An audit_log row, as both engines return it. */
export interface AuditRow {
  id: number;
  time: string;
  actor: string;
  action: string;
  target: string;
  result: AuditEntry['result'];
  details: string;
}

export function toEntry(r: AuditRow): AuditEntry {
  return {
    id: r.id,
    time: fromIso(r.time),
    actor: r.actor,
    action: r.action,
    target: r.target,
    result: r.result,
    details: JSON.parse(r.details) as Record<string, unknown>,
  };
}

/** The named parameters of appendAudit (checked). */
export function auditParams(e: NewAuditEntry): Record<string, string> {
  return {
    time: toIso('time', e.time ?? new Date()),
    actor: nonEmpty('actor', e.actor),
    action: nonEmpty('action', e.action),
    target: text('target', e.target),
    result: oneOf('result', e.result, RESULTS),
    details: toJsonObject('details', e.details ?? {}),
  };
}

/** The filters of listAudit and countAudit as named parameters (null: not filtered). */
export function auditFilter(
  q: { limit?: number; offset?: number; beforeId?: number; action?: string; target?: string } = {},
): { action: string | null; target: string | null; before: number | null; limit: number; offset: number } {
  return {
    action: q.action === undefined ? null : text('action', q.action),
    target: q.target === undefined ? null : text('target', q.target),
    before: q.beforeId === undefined ? null : intAtLeast('beforeId', q.beforeId, 1),
    limit: q.limit === undefined ? DEFAULT_LIMIT : intAtLeast('limit', q.limit, 0),
    offset: q.offset === undefined ? 0 : intAtLeast('offset', q.offset, 0),
  };
}

/** The audit log: append and read only; triggers in the schema refuse UPDATE and DELETE. */
export class SqliteAudit implements Sync<AuditStore> {
  private readonly insert: Statement;
  private readonly list: Statement;
  private readonly count: Statement;

  constructor(db: Database) {
    const cols = AUDIT_COLS;
    this.insert = db.prepare(
      `INSERT INTO audit_log (time, actor, action, target, result, details)
       VALUES (@time, @actor, @action, @target, @result, @details) RETURNING ${cols}`,
    );
    this.list = db.prepare(
      `SELECT ${cols} FROM audit_log
       WHERE (@action IS NULL OR action = @action) AND (@target IS NULL OR target = @target)
         AND (@before IS NULL OR id < @before)
       ORDER BY id DESC LIMIT @limit OFFSET @offset`,
    );
    this.count = db.prepare(
      `SELECT count(*) AS n FROM audit_log
       WHERE (@action IS NULL OR action = @action) AND (@target IS NULL OR target = @target)`,
    );
  }

  appendAudit(e: NewAuditEntry): AuditEntry {
    const row = this.insert.get(auditParams(e)) as AuditRow;
    return toEntry(row);
  }

  listAudit(
    q: { limit?: number; offset?: number; beforeId?: number; action?: string; target?: string } = {},
  ): AuditEntry[] {
    const rows = this.list.all(auditFilter(q)) as AuditRow[];
    return rows.map(toEntry);
  }

  countAudit(q: { action?: string; target?: string } = {}): number {
    const { action, target } = auditFilter(q);
    const row = this.count.get({ action, target }) as { n: number };
    return row.n;
  }
}
