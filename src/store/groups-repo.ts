import type { Database, Statement } from 'better-sqlite3';
import { Conflict, NotFound } from '../lib/errors.js';
import { fromIso, nonEmpty, sqliteCode, text, type Tx, type Sync } from './sql-util.js';

/** A group kept by podgate itself (single sign-on groups come from the provider, see oidc-repo). */
export interface LocalGroup {
  id: number;
  name: string;
  description: string;
  createdAt: Date;
  /** Member user names, sorted. */
  members: string[];
}

export interface GroupStore {
  /** Conflict on a duplicate name. */
  createGroup(g: { name: string; description?: string }): Promise<LocalGroup>;
  getGroup(name: string): Promise<LocalGroup | undefined>;
  /** Sorted by name. */
  listGroups(): Promise<LocalGroup[]>;
  /** NotFound for an unknown name; members go with it. */
  deleteGroup(name: string): Promise<void>;
  /** NotFound for an unknown group; Conflict when the user is already a member. */
  addGroupMember(group: string, userId: number): Promise<void>;
  /** NotFound for an unknown group or a user who is not a member. */
  removeGroupMember(group: string, userId: number): Promise<void>;
  /** Names of the local groups a user belongs to, sorted. */
  localGroupsOf(userId: number): Promise<string[]>;
}

interface Row {
  id: number;
  name: string;
  description: string;
  created_at: string;
  members: string | null;
}

/** local_groups and local_group_members. */
export class SqliteGroups implements Sync<GroupStore> {
  private readonly insert: Statement;
  private readonly byName: Statement;
  private readonly all: Statement;
  private readonly remove: Statement;
  private readonly addMember: Statement;
  private readonly dropMember: Statement;
  private readonly ofUser: Statement;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    const select = `SELECT g.id, g.name, g.description, g.created_at,
        (SELECT json_group_array(u.name) FROM (SELECT u.name FROM local_group_members m
           JOIN users u ON u.id = m.user_id WHERE m.group_id = g.id ORDER BY u.name) u) AS members
      FROM local_groups g`;
    this.insert = db.prepare('INSERT INTO local_groups (name, description, created_at) VALUES (?, ?, ?)');
    this.byName = db.prepare(`${select} WHERE g.name = ?`);
    this.all = db.prepare(`${select} ORDER BY g.name`);
    this.remove = db.prepare('DELETE FROM local_groups WHERE name = ?');
    this.addMember = db.prepare(
      'INSERT INTO local_group_members (group_id, user_id, added_at) VALUES (?, ?, ?)',
    );
    this.dropMember = db.prepare('DELETE FROM local_group_members WHERE group_id = ? AND user_id = ?');
    this.ofUser = db
      .prepare(
        `SELECT g.name FROM local_group_members m JOIN local_groups g ON g.id = m.group_id
         WHERE m.user_id = ? ORDER BY g.name`,
      )
      .pluck();
  }

  private toGroup(r: Row): LocalGroup {
    return {
      id: r.id,
      name: r.name,
      description: r.description,
      createdAt: fromIso(r.created_at),
      members: r.members ? (JSON.parse(r.members) as string[]) : [],
    };
  }

  createGroup(g: { name: string; description?: string }): LocalGroup {
    const name = nonEmpty('name', g.name);
    const description = text('description', g.description ?? '');
    return this.tx(() => {
      try {
        this.insert.run(name, description, new Date().toISOString());
      } catch (err) {
        if (sqliteCode(err) === 'SQLITE_CONSTRAINT_UNIQUE')
          throw new Conflict(`group '${name}' already exists`, 'name');
        throw err;
      }
      return this.getGroup(name) as LocalGroup;
    });
  }

  getGroup(name: string): LocalGroup | undefined {
    const r = this.byName.get(name) as Row | undefined;
    return r && this.toGroup(r);
  }

  listGroups(): LocalGroup[] {
    return (this.all.all() as Row[]).map((r) => this.toGroup(r));
  }

  deleteGroup(name: string): void {
    if (this.remove.run(name).changes === 0) throw new NotFound(`group '${name}' does not exist`);
  }

  private need(group: string): LocalGroup {
    const g = this.getGroup(group);
    if (!g) throw new NotFound(`group '${group}' does not exist`);
    return g;
  }

  addGroupMember(group: string, userId: number): void {
    this.tx(() => {
      const g = this.need(group);
      try {
        this.addMember.run(g.id, userId, new Date().toISOString());
      } catch (err) {
        const code = sqliteCode(err);
        if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
          throw new Conflict(`the user is already a member of group '${group}'`, 'user');
        if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new NotFound(`user ${userId} does not exist`);
        throw err;
      }
    });
  }

  removeGroupMember(group: string, userId: number): void {
    this.tx(() => {
      const g = this.need(group);
      if (this.dropMember.run(g.id, userId).changes === 0)
        throw new NotFound(`the user is not a member of group '${group}'`);
    });
  }

  localGroupsOf(userId: number): string[] {
    return this.ofUser.all(userId) as string[];
  }
}
