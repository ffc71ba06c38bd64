import type { Database, Statement } from 'better-sqlite3';
import { fromIso, fromIsoOrNull, toIso, type Sync } from './sql-util.js';

/** One provider account (issuer + subject) linked to one podgate user. */
export interface OidcIdentity {
  issuer: string;
  subject: string;
  userId: number;
  /** The groups the provider last reported (for the admin's view and the audit trail). */
  groups: string[];
  /** Encrypted refresh-token envelope, or null when the provider gave none. Never the clear token. */
  refreshToken: string | null;
  createdAt: Date;
  lastLoginAt: Date | null;
  lastSyncAt: Date | null;
}

export interface OidcIdentityStore {
  getOidcIdentity(issuer: string, subject: string): Promise<OidcIdentity | undefined>;
  getOidcIdentityOfUser(userId: number): Promise<OidcIdentity | undefined>;
  /** Identities of this issuer, ordered by user id. */
  listOidcIdentities(issuer: string): Promise<OidcIdentity[]>;
  insertOidcIdentity(i: Omit<OidcIdentity, 'lastSyncAt'>): Promise<OidcIdentity>;
  /** Changes only the fields given; `refreshToken: null` forgets the stored token. */
  updateOidcIdentity(
    issuer: string,
    subject: string,
    patch: Partial<Pick<OidcIdentity, 'groups' | 'refreshToken' | 'lastLoginAt' | 'lastSyncAt'>>,
  ): Promise<void>;
}

/** An oidc_identities row, as both engines return it. */
export interface OidcRow {
  issuer: string;
  subject: string;
  user_id: number;
  groups: string;
  refresh_token: string | null;
  created_at: string;
  last_login_at: string | null;
  last_sync_at: string | null;
}

export function toIdentity(r: OidcRow): OidcIdentity {
  return {
    issuer: r.issuer,
    subject: r.subject,
    userId: r.user_id,
    groups: JSON.parse(r.groups) as string[],
    refreshToken: r.refresh_token,
    createdAt: fromIso(r.created_at),
    lastLoginAt: fromIsoOrNull(r.last_login_at),
    lastSyncAt: fromIsoOrNull(r.last_sync_at),
  };
}

const COLUMNS = {
  groups: 'groups',
  refreshToken: 'refresh_token',
  lastLoginAt: 'last_login_at',
  lastSyncAt: 'last_sync_at',
} as const;

/** The positional values of insertOidcIdentity: issuer, subject, user, groups, token, created, last login. */
export function oidcInsertValues(i: Omit<OidcIdentity, 'lastSyncAt'>): unknown[] {
  return [
    i.issuer,
    i.subject,
    i.userId,
    JSON.stringify(i.groups),
    i.refreshToken,
    toIso('createdAt', i.createdAt),
    i.lastLoginAt ? toIso('lastLoginAt', i.lastLoginAt) : null,
  ];
}

/**
 * The updateOidcIdentity statement for the fields `patch` names (`?` placeholders, both engines), or
 * undefined when it names none.
 */
export function oidcUpdate(
  issuer: string,
  subject: string,
  patch: Partial<Pick<OidcIdentity, 'groups' | 'refreshToken' | 'lastLoginAt' | 'lastSyncAt'>>,
): { sql: string; params: unknown[] } | undefined {
  const sets: string[] = [];
  const values: unknown[] = [];
  for (const [key, column] of Object.entries(COLUMNS) as [keyof typeof COLUMNS, string][]) {
    if (!(key in patch)) continue;
    const v = patch[key];
    sets.push(`${column} = ?`);
    if (key === 'groups') values.push(JSON.stringify(v));
    else if (v instanceof Date) values.push(toIso(key, v));
    else values.push(v ?? null);
  }
  if (sets.length === 0) return undefined;
  return {
    sql: `UPDATE oidc_identities SET ${sets.join(', ')} WHERE issuer = ? AND subject = ?`,
    params: [...values, issuer, subject],
  };
}

/** The subject → user links of single sign-on (table `oidc_identities`). */
export class SqliteOidcIdentities implements Sync<OidcIdentityStore> {
  private readonly byKey: Statement;
  private readonly byUser: Statement;
  private readonly ofIssuer: Statement;
  private readonly insert: Statement;

  constructor(private readonly db: Database) {
    this.byKey = db.prepare('SELECT * FROM oidc_identities WHERE issuer = ? AND subject = ?');
    this.byUser = db.prepare('SELECT * FROM oidc_identities WHERE user_id = ?');
    this.ofIssuer = db.prepare('SELECT * FROM oidc_identities WHERE issuer = ? ORDER BY user_id');
    this.insert = db.prepare(
      `INSERT INTO oidc_identities (issuer, subject, user_id, groups, refresh_token, created_at, last_login_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    );
  }

  getOidcIdentity(issuer: string, subject: string): OidcIdentity | undefined {
    const r = this.byKey.get(issuer, subject) as OidcRow | undefined;
    return r && toIdentity(r);
  }

  getOidcIdentityOfUser(userId: number): OidcIdentity | undefined {
    const r = this.byUser.get(userId) as OidcRow | undefined;
    return r && toIdentity(r);
  }

  listOidcIdentities(issuer: string): OidcIdentity[] {
    return (this.ofIssuer.all(issuer) as OidcRow[]).map(toIdentity);
  }

  insertOidcIdentity(i: Omit<OidcIdentity, 'lastSyncAt'>): OidcIdentity {
    const r = this.insert.get(...oidcInsertValues(i)) as OidcRow;
    return toIdentity(r);
  }

  updateOidcIdentity(
    issuer: string,
    subject: string,
    patch: Partial<Pick<OidcIdentity, 'groups' | 'refreshToken' | 'lastLoginAt' | 'lastSyncAt'>>,
  ): void {
    const u = oidcUpdate(issuer, subject, patch);
    if (u) this.db.prepare(u.sql).run(...u.params);
  }
}
