import type { Database, Statement } from 'better-sqlite3';
import { BadRequest, Conflict, NotFound } from '../lib/errors.js';
import { fromIso, fromIsoOrNull, intAtLeast, nonEmpty, sqliteCode, text, toIso } from './sql-util.js';
import type { ApiToken, TokenStore } from './types.js';

interface TokenRow {
  id: number;
  user_id: number;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

function toToken(r: TokenRow): ApiToken {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    createdAt: fromIso(r.created_at),
    lastUsedAt: fromIsoOrNull(r.last_used_at),
  };
}

/** API tokens, looked up by the hash the caller computed; the hash is never read back out. */
export class SqliteTokens implements TokenStore {
  private readonly insert: Statement;
  private readonly byHash: Statement;
  private readonly ofUser: Statement;
  private readonly remove: Statement;
  private readonly touch: Statement;

  constructor(db: Database) {
    const cols = 'id, user_id, name, created_at, last_used_at';
    this.insert = db.prepare(
      `INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?) RETURNING ${cols}`,
    );
    this.byHash = db.prepare(`SELECT ${cols} FROM api_tokens WHERE token_hash = ?`);
    this.ofUser = db.prepare(`SELECT ${cols} FROM api_tokens WHERE user_id = ? ORDER BY id`);
    this.remove = db.prepare('DELETE FROM api_tokens WHERE id = ?');
    this.touch = db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?');
  }

  createToken(t: { userId: number; name: string; tokenHash: string }): ApiToken {
    const userId = intAtLeast('userId', t.userId, 1);
    const name = text('name', t.name);
    const hash = nonEmpty('tokenHash', t.tokenHash);
    try {
      return toToken(this.insert.get(userId, name, hash, new Date().toISOString()) as TokenRow);
    } catch (err) {
      const code = sqliteCode(err);
      if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY')
        throw new BadRequest(`userId ${userId} does not exist`, 'userId');
      if (code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new Conflict('this token hash is already stored', 'tokenHash');
      throw err;
    }
  }

  findTokenByHash(tokenHash: string): ApiToken | undefined {
    const r = this.byHash.get(tokenHash) as TokenRow | undefined;
    return r && toToken(r);
  }

  listTokens(userId: number): ApiToken[] {
    return (this.ofUser.all(userId) as TokenRow[]).map(toToken);
  }

  deleteToken(id: number): void {
    if (this.remove.run(id).changes === 0) throw new NotFound(`token ${id} not found`);
  }

  touchToken(id: number, at: Date): void {
    this.touch.run(toIso('at', at), id);
  }
}
