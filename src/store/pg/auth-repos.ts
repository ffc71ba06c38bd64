import { BadRequest, NotFound } from '../../lib/errors.js';
import {
  importLinkValues,
  LINK_SELECT,
  toLink,
  type ImportLink,
  type ImportLinkStore,
  type LinkRow,
} from '../import-links-repo.js';
import { oidcInsertValues, oidcUpdate, toIdentity, type OidcIdentity, type OidcRow } from '../oidc-repo.js';
import { TOKEN_SELECT, toToken, type TokenRow } from '../tokens-repo.js';
import { fromIso, intAtLeast, nonEmpty, text, toIso, toIsoOrNull } from '../sql-util.js';
import type { ApiToken, SessionRecord } from '../types.js';
import { ownedHashError } from '../owned-hash-errors.js';
import { sessionParams } from '../sessions-repo.js';
import { constraintError, type PgDb } from './db.js';

/** A value for an int4 id column, or undefined when it cannot be one (then nothing matches). */
function idOrUndefined(id: number): number | undefined {
  return Number.isSafeInteger(id) && id >= 1 && id <= 2 ** 31 - 1 ? id : undefined;
}

/** Web sessions (PostgreSQL). */
export class PgSessions {
  constructor(private readonly db: PgDb) {}

  async getSession(sid: string, now: Date = new Date()): Promise<SessionRecord | undefined> {
    const r = await this.db.get<{ data: string; expires_at: string; user_id: number | null }>(
      'SELECT data, expires_at, user_id FROM sessions WHERE sid = ? AND expires_at > ?',
      [sid, toIso('now', now)],
    );
    return r && { data: r.data, expiresAt: fromIso(r.expires_at), userId: r.user_id };
  }

  async setSession(sid: string, data: string, expiresAt: Date, userId: number | null = null): Promise<void> {
    const params = sessionParams(sid, data, expiresAt, userId);
    try {
      await this.db.atomic((db) =>
        db.run(
          `INSERT INTO sessions (sid, user_id, data, expires_at) VALUES (@sid, @userId, @data, @expiresAt)
           ON CONFLICT (sid) DO UPDATE SET user_id = excluded.user_id, data = excluded.data,
             expires_at = excluded.expires_at`,
          params,
        ),
      );
    } catch (err) {
      throw constraintError(err, {
        foreignKey: () => new BadRequest(`userId ${userId} does not exist`, 'userId'),
      });
    }
  }

  async destroySession(sid: string): Promise<void> {
    await this.db.run('DELETE FROM sessions WHERE sid = ?', [sid]);
  }

  destroySessionsOfUser(userId: number): Promise<number> {
    const id = idOrUndefined(userId);
    return id === undefined
      ? Promise.resolve(0)
      : this.db.run('DELETE FROM sessions WHERE user_id = ?', [id]);
  }

  pruneSessions(now: Date): Promise<number> {
    return this.db.run('DELETE FROM sessions WHERE expires_at <= ?', [toIso('now', now)]);
  }
}

/** API tokens (PostgreSQL). */
export class PgTokens {
  constructor(private readonly db: PgDb) {}

  async createToken(t: {
    userId: number;
    name: string;
    tokenHash: string;
    expiresAt?: Date | null;
  }): Promise<ApiToken> {
    const userId = intAtLeast('userId', t.userId, 1);
    const name = text('name', t.name);
    const hash = nonEmpty('tokenHash', t.tokenHash);
    const expires = toIsoOrNull('expiresAt', t.expiresAt);
    try {
      return await this.db.atomic(async (db) => {
        const r = await db.get<{ id: number }>(
          'INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?) RETURNING id',
          [userId, name, hash, new Date().toISOString(), expires],
        );
        return (await new PgTokens(db).getToken(r!.id))!;
      });
    } catch (err) {
      throw ownedHashError(err, userId);
    }
  }

  async findTokenByHash(tokenHash: string): Promise<ApiToken | undefined> {
    const r = await this.db.get<TokenRow>(`${TOKEN_SELECT} WHERE t.token_hash = ?`, [tokenHash]);
    return r && toToken(r);
  }

  async getToken(id: number): Promise<ApiToken | undefined> {
    const key = idOrUndefined(id);
    if (key === undefined) return undefined;
    const r = await this.db.get<TokenRow>(`${TOKEN_SELECT} WHERE t.id = ?`, [key]);
    return r && toToken(r);
  }

  async listTokens(userId: number): Promise<ApiToken[]> {
    const key = idOrUndefined(userId);
    if (key === undefined) return [];
    return (await this.db.all<TokenRow>(`${TOKEN_SELECT} WHERE t.user_id = ? ORDER BY t.id`, [key])).map(
      toToken,
    );
  }

  async listAllTokens(): Promise<ApiToken[]> {
    return (await this.db.all<TokenRow>(`${TOKEN_SELECT} ORDER BY u.name, t.id`)).map(toToken);
  }

  async deleteToken(id: number): Promise<void> {
    const key = idOrUndefined(id);
    if (key === undefined || (await this.db.run('DELETE FROM api_tokens WHERE id = ?', [key])) === 0) {
      throw new NotFound(`token ${id} not found`);
    }
  }

  async touchToken(id: number, at: Date): Promise<void> {
    const key = idOrUndefined(id);
    const when = toIso('at', at);
    if (key !== undefined)
      await this.db.run('UPDATE api_tokens SET last_used_at = ? WHERE id = ?', [when, key]);
  }
}

/** Single sign-on identities (PostgreSQL). */
export class PgOidc {
  constructor(private readonly db: PgDb) {}

  async getOidcIdentity(issuer: string, subject: string): Promise<OidcIdentity | undefined> {
    const r = await this.db.get<OidcRow>('SELECT * FROM oidc_identities WHERE issuer = ? AND subject = ?', [
      issuer,
      subject,
    ]);
    return r && toIdentity(r);
  }

  async getOidcIdentityOfUser(userId: number): Promise<OidcIdentity | undefined> {
    const key = idOrUndefined(userId);
    if (key === undefined) return undefined;
    const r = await this.db.get<OidcRow>('SELECT * FROM oidc_identities WHERE user_id = ?', [key]);
    return r && toIdentity(r);
  }

  async listOidcIdentities(issuer: string): Promise<OidcIdentity[]> {
    return (
      await this.db.all<OidcRow>('SELECT * FROM oidc_identities WHERE issuer = ? ORDER BY user_id', [issuer])
    ).map(toIdentity);
  }

  async insertOidcIdentity(i: Omit<OidcIdentity, 'lastSyncAt'>): Promise<OidcIdentity> {
    const r = await this.db.atomic((db) =>
      db.get<OidcRow>(
        `INSERT INTO oidc_identities (issuer, subject, user_id, groups, refresh_token, created_at, last_login_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        oidcInsertValues(i),
      ),
    );
    return toIdentity(r!);
  }

  async updateOidcIdentity(
    issuer: string,
    subject: string,
    patch: Partial<Pick<OidcIdentity, 'groups' | 'refreshToken' | 'lastLoginAt' | 'lastSyncAt'>>,
  ): Promise<void> {
    const u = oidcUpdate(issuer, subject, patch);
    if (u) await this.db.run(u.sql, u.params);
  }
}

/** One-use import links (PostgreSQL). */
export class PgImportLinks {
  constructor(private readonly db: PgDb) {}

  async createImportLink(l: Parameters<ImportLinkStore['createImportLink']>[0]): Promise<ImportLink> {
    const values = importLinkValues(l);
    const [userId, hash] = values as [number, string];
    try {
      return await this.db.atomic(async (db) => {
        await db.run(
          `INSERT INTO import_links (user_id, token_hash, device_name, key_type, created_at, created_ip, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
          values,
        );
        return toLink((await db.get<LinkRow>(`${LINK_SELECT} WHERE l.token_hash = ?`, [hash]))!);
      });
    } catch (err) {
      throw ownedHashError(err, userId);
    }
  }

  async findImportLinkByHash(tokenHash: string): Promise<ImportLink | undefined> {
    const r = await this.db.get<LinkRow>(`${LINK_SELECT} WHERE l.token_hash = ?`, [tokenHash]);
    return r && toLink(r);
  }

  async claimImportLink(id: number, at: Date, ip: string): Promise<boolean> {
    const t = toIso('at', at);
    const key = idOrUndefined(id);
    if (key === undefined) return false;
    // one UPDATE: of two racing fetches, the second re-checks the row after the first commits
    const n = await this.db.run(
      'UPDATE import_links SET used_at = ?, used_ip = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?',
      [t, ip, key, t],
    );
    return n === 1;
  }

  async releaseImportLink(id: number): Promise<void> {
    const key = idOrUndefined(id);
    if (key === undefined) return;
    await this.db.run(
      'UPDATE import_links SET used_at = NULL, used_ip = NULL WHERE id = ? AND cert_serial IS NULL',
      [key],
    );
  }

  async setImportLinkSerial(id: number, serial: string): Promise<void> {
    const key = idOrUndefined(id);
    if (key !== undefined)
      await this.db.run('UPDATE import_links SET cert_serial = ? WHERE id = ?', [serial, key]);
  }

  pruneImportLinks(before: Date): Promise<number> {
    return this.db.run('DELETE FROM import_links WHERE expires_at < ?', [toIso('before', before)]);
  }
}
