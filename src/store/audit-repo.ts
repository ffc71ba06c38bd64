import type { Database, Statement } from 'better-sqlite3';
import { fromIso, intAtLeast, nonEmpty, oneOf, text, toIso, toJsonObject, type Sync } from './sql-util.js';
import type { AuditEntry, AuditStore, NewAuditEntry } from './types.js';

const RESULTS: readonly AuditEntry['result'][] = ['ok', 'error', 'pending'];
const DEFAULT_LIMIT = 100;

interface AuditRow {
  id: number;
  time: string;
  actor: string;
  action: string;
  target: string;
  result: AuditEntry['result'];
  details: string;
}

function toEntry(r: AuditRow): AuditEntry {
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

/** The audit log: append and read only; triggers in the schema refuse UPDATE and DELETE. */
export class SqliteAudit implements Sync<AuditStore> {
  private readonly insert: Statement;
  private readonly list: Statement;
  private readonly count: Statement;

  constructor(db: Database) {
    const cols = 'id, time, actor, action, target, result, details';
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
    const row = this.insert.get({
      time: toIso('time', e.time ?? new Date()),
      actor: nonEmpty('actor', e.actor),
      action: nonEmpty('action', e.action),
      target: text('target', e.target),
      result: oneOf('result', e.result, RESULTS),
      details: toJsonObject('details', e.details ?? {}),
    }) as AuditRow;
    return toEntry(row);
  }

  listAudit(
    q: { limit?: number; offset?: number; beforeId?: number; action?: string; target?: string } = {},
  ): AuditEntry[] {
    const rows = this.list.all({
      action: q.action === undefined ? null : text('action', q.action),
      target: q.target === undefined ? null : text('target', q.target),
      before: q.beforeId === undefined ? null : intAtLeast('beforeId', q.beforeId, 1),
      limit: q.limit === undefined ? DEFAULT_LIMIT : intAtLeast('limit', q.limit, 0),
      offset: q.offset === undefined ? 0 : intAtLeast('offset', q.offset, 0),
    }) as AuditRow[];
    return rows.map(toEntry);
  }

  countAudit(q: { action?: string; target?: string } = {}): number {
    const row = this.count.get({
      action: q.action === undefined ? null : text('action', q.action),
      target: q.target === undefined ? null : text('target', q.target),
    }) as { n: number };
    return row.n;
  }
}
