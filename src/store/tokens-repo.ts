import type { Database, Statement } from 'better-sqlite3';
import { NotFound } from '../lib/errors.js';
import {
  fromIso,
  fromIsoOrNull,
  intAtLeast,
  nonEmpty,
  text,
  toIso,
  toIsoOrNull,
  type Sync,
} from './sql-util.js';
import { ownedHashError } from './owned-hash-errors.js';
import type { ApiToken, TokenStore } from './types.js';

/** An api_tokens row joined with its owner's name, as both engines return it. */
export interface TokenRow {
  id: number;
  user_id: number;
  user_name: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
}

export function toToken(r: TokenRow): ApiToken {
  return {
    id: r.id,
    userId: r.user_id,
    userName: r.user_name,
    name: r.name,
    createdAt: fromIso(r.created_at),
    lastUsedAt: fromIsoOrNull(r.last_used_at),
    expiresAt: fromIsoOrNull(r.expires_at),
  };
}

/** The token columns and join every token read uses (both engines). */
export const TOKEN_SELECT = `SELECT t.id, t.user_id, u.name AS user_name, t.name, t.created_at, t.last_used_at, t.expires_at
  FROM api_tokens t JOIN users u ON u.id = t.user_id`;

/** API tokens, looked up by the hash the caller computed; the hash is never read back out. */
export class SqliteTokens implements Sync<TokenStore> {
  private readonly insert: Statement;
  private readonly byHash: Statement;
  private readonly byId: Statement;
  private readonly ofUser: Statement;
  private readonly all: Statement;
  private readonly remove: Statement;
  private readonly touch: Statement;

  constructor(db: Database) {
    this.insert = db.prepare(
      'INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?) RETURNING id',
    );
    this.byHash = db.prepare(`${TOKEN_SELECT} WHERE t.token_hash = ?`);
    this.byId = db.prepare(`${TOKEN_SELECT} WHERE t.id = ?`);
    this.ofUser = db.prepare(`${TOKEN_SELECT} WHERE t.user_id = ? ORDER BY t.id`);
    this.all = db.prepare(`${TOKEN_SELECT} ORDER BY u.name, t.id`);
    this.remove = db.prepare('DELETE FROM api_tokens WHERE id = ?');
    this.touch = db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?');
  }

  createToken(t: { userId: number; name: string; tokenHash: string; expiresAt?: Date | null }): ApiToken {
    const userId = intAtLeast('userId', t.userId, 1);
    const name = text('name', t.name);
    const hash = nonEmpty('tokenHash', t.tokenHash);
    const expires = toIsoOrNull('expiresAt', t.expiresAt);
    try {
      const { id } = this.insert.get(userId, name, hash, new Date().toISOString(), expires) as { id: number };
      return this.getToken(id)!;
    } catch (err) {
      throw ownedHashError(err, userId);
    }
  }

  findTokenByHash(tokenHash: string): ApiToken | undefined {
    const r = this.byHash.get(tokenHash) as TokenRow | undefined;
    return r && toToken(r);
  }

  getToken(id: number): ApiToken | undefined {
    const r = this.byId.get(id) as TokenRow | undefined;
    return r && toToken(r);
  }

  listTokens(userId: number): ApiToken[] {
    return (this.ofUser.all(userId) as TokenRow[]).map(toToken);
  }

  listAllTokens(): ApiToken[] {
    return (this.all.all() as TokenRow[]).map(toToken);
  }

  deleteToken(id: number): void {
    if (this.remove.run(id).changes === 0) throw new NotFound(`token ${id} not found`);
  }

  touchToken(id: number, at: Date): void {
    this.touch.run(toIso('at', at), id);
  }
}
