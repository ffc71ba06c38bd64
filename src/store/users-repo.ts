import type { Database, Statement } from 'better-sqlite3';
import { BadRequest, Conflict, NotFound } from '../lib/errors.js';
import { fromIso, intAtLeast, nonEmpty, oneOf, sqliteCode, type Sync } from './sql-util.js';
import type { Role, User, UserStore } from './types.js';

export const ROLES: readonly Role[] = ['admin', 'user'];

/** The users columns every read returns (both engines). */
export const USER_COLS = 'id, name, role, password_hash, disabled, created_at';

/** A users row, as both engines return it. */
export interface UserRow {
  id: number;
  name: string;
  role: Role;
  password_hash: string | null;
  disabled: number;
  created_at: string;
}

export function toUser(r: UserRow): User {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    passwordHash: r.password_hash,
    disabled: r.disabled === 1,
    createdAt: fromIso(r.created_at),
  };
}

export function hashOrNull(value: unknown): string | null {
  if (value === null) return null;
  return nonEmpty('passwordHash', value);
}

/** updateUser's patch as parameters (checked; null: leave the column; setHash 1: write hash, null too). */
export function userPatch(patch: Partial<Pick<User, 'role' | 'passwordHash' | 'disabled'>>): {
  role: Role | null;
  setHash: 0 | 1;
  hash: string | null;
  disabled: 0 | 1 | null;
} {
  const role = patch.role === undefined ? null : oneOf('role', patch.role, ROLES);
  const setHash = patch.passwordHash !== undefined;
  const hash = setHash ? hashOrNull(patch.passwordHash) : null;
  if (patch.disabled !== undefined && typeof patch.disabled !== 'boolean') {
    throw new BadRequest('disabled must be true or false', 'disabled');
  }
  const disabled = patch.disabled === undefined ? null : patch.disabled ? 1 : 0;
  return { role, setHash: setHash ? 1 : 0, hash, disabled };
}

/** Users table. Names are unique as written (the service layer lower-cases and validates them). */
export class SqliteUsers implements Sync<UserStore> {
  private readonly insert: Statement;
  private readonly byName: Statement;
  private readonly byId: Statement;
  private readonly all: Statement;
  private readonly update: Statement;
  private readonly endSessions: Statement;
  private readonly dropTokens: Statement;
  private readonly updateTx: (id: number, params: Record<string, unknown>) => UserRow | undefined;

  constructor(db: Database) {
    const cols = 'id, name, role, password_hash, disabled, created_at';
    this.insert = db.prepare(
      `INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING ${cols}`,
    );
    this.byName = db.prepare(`SELECT ${cols} FROM users WHERE name = ?`);
    this.byId = db.prepare(`SELECT ${cols} FROM users WHERE id = ?`);
    this.all = db.prepare(`SELECT ${cols} FROM users ORDER BY name`);
    // @setHash distinguishes "leave the hash alone" from "clear it" (null is a meaningful value)
    this.update = db.prepare(
      `UPDATE users SET role = coalesce(@role, role),
         password_hash = CASE WHEN @setHash THEN @hash ELSE password_hash END,
         disabled = coalesce(@disabled, disabled)
       WHERE id = @id RETURNING ${cols}`,
    );
    this.endSessions = db.prepare('DELETE FROM sessions WHERE user_id = ?');
    this.dropTokens = db.prepare('DELETE FROM api_tokens WHERE user_id = ?');
    // Part of the same write, so that no caller (web, CLI, a future one) can forget it: a new password,
    // a role change or a disable ends every web session of the user, and a disable deletes their API
    // tokens for good (enabling the account again does not bring them back).
    this.updateTx = db.transaction((id: number, params: Record<string, unknown>) => {
      const before = this.byId.get(id) as UserRow | undefined;
      if (!before) return undefined;
      const after = this.update.get(params) as UserRow;
      if (after.role !== before.role || after.disabled !== before.disabled || params.setHash === 1) {
        this.endSessions.run(id);
      }
      if (after.disabled === 1) this.dropTokens.run(id);
      return after;
    });
  }

  createUser(u: { name: string; role: Role; passwordHash: string | null }): User {
    const name = nonEmpty('name', u.name);
    const role = oneOf('role', u.role, ROLES);
    const hash = hashOrNull(u.passwordHash);
    try {
      return toUser(this.insert.get(name, role, hash, new Date().toISOString()) as UserRow);
    } catch (err) {
      if (sqliteCode(err) === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new Conflict(`user '${name}' already exists`, 'name');
      }
      throw err;
    }
  }

  getUserByName(name: string): User | undefined {
    const row = this.byName.get(name) as UserRow | undefined;
    return row && toUser(row);
  }

  getUserById(id: number): User | undefined {
    const row = this.byId.get(id) as UserRow | undefined;
    return row && toUser(row);
  }

  listUsers(): User[] {
    return (this.all.all() as UserRow[]).map(toUser);
  }

  updateUser(id: number, patch: Partial<Pick<User, 'role' | 'passwordHash' | 'disabled'>>): User {
    intAtLeast('id', id, 1);
    const row = this.updateTx(id, { id, ...userPatch(patch) });
    if (!row) throw new NotFound(`user ${id} not found`);
    return toUser(row);
  }
}
