import type { Database, Statement } from 'better-sqlite3';
import { BadRequest } from '../lib/errors.js';
import { fromIso, intAtLeast, nonEmpty, sqliteCode, text, toIso, type Sync } from './sql-util.js';
import type { SessionRecord, SessionStore } from './types.js';

interface SessionRow {
  data: string;
  expires_at: string;
  user_id: number | null;
}

/** The named parameters of setSession (checked). */
export function sessionParams(sid: string, data: string, expiresAt: Date, userId: number | null) {
  return {
    sid: nonEmpty('sid', sid),
    data: text('data', data),
    expiresAt: toIso('expiresAt', expiresAt),
    userId: userId === null ? null : intAtLeast('userId', userId, 1),
  };
}

/** Web sessions. Expired rows are invisible to reads at once and removed by pruneSessions. */
export class SqliteSessions implements Sync<SessionStore> {
  private readonly get: Statement;
  private readonly set: Statement;
  private readonly destroy: Statement;
  private readonly destroyOfUser: Statement;
  private readonly prune: Statement;

  constructor(db: Database) {
    this.get = db.prepare('SELECT data, expires_at, user_id FROM sessions WHERE sid = ? AND expires_at > ?');
    this.set = db.prepare(
      `INSERT INTO sessions (sid, user_id, data, expires_at) VALUES (@sid, @userId, @data, @expiresAt)
       ON CONFLICT (sid) DO UPDATE SET user_id = excluded.user_id, data = excluded.data,
         expires_at = excluded.expires_at`,
    );
    this.destroy = db.prepare('DELETE FROM sessions WHERE sid = ?');
    this.destroyOfUser = db.prepare('DELETE FROM sessions WHERE user_id = ?');
    this.prune = db.prepare('DELETE FROM sessions WHERE expires_at <= ?');
  }

  getSession(sid: string, now: Date = new Date()): SessionRecord | undefined {
    const r = this.get.get(sid, toIso('now', now)) as SessionRow | undefined;
    return r && { data: r.data, expiresAt: fromIso(r.expires_at), userId: r.user_id };
  }

  setSession(sid: string, data: string, expiresAt: Date, userId: number | null = null): void {
    const params = sessionParams(sid, data, expiresAt, userId);
    try {
      this.set.run(params);
    } catch (err) {
      if (sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new BadRequest(`userId ${userId} does not exist`, 'userId');
      }
      throw err;
    }
  }

  destroySession(sid: string): void {
    this.destroy.run(sid);
  }

  destroySessionsOfUser(userId: number): number {
    return this.destroyOfUser.run(userId).changes;
  }

  pruneSessions(now: Date): number {
    return this.prune.run(toIso('now', now)).changes;
  }
}
