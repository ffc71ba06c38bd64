import type { Database, Statement } from 'better-sqlite3';
import { NotFound } from '../lib/errors.js';
import type { AccessRule } from '../access/types.js';
import { fromIso, intAtLeast, nonEmpty, type Tx, type Sync } from './sql-util.js';

/** A stored rule: the validated rule as JSON, and its place in the list (export and pages keep the order). */
export interface StoredRule {
  rule: AccessRule;
  position: number;
  createdAt: Date;
  updatedAt: Date;
}

/** The access bundle's version and what was last published under it. */
export interface AccessState {
  version: number;
  publishedVersion: number;
  publishedHash: string | null;
}

export interface AccessRuleStore {
  /** By position, then name. */
  listRules(): Promise<StoredRule[]>;
  getRule(name: string): Promise<StoredRule | undefined>;
  /** Creates or replaces by name; returns whether the stored rule or its position changed. */
  putRule(rule: AccessRule, position: number): Promise<boolean>;
  /** NotFound for an unknown name. */
  deleteRule(name: string): Promise<void>;
  getAccessState(): Promise<AccessState>;
  /** Raises the version by one (the triggers of migration 008 do it for every table change). */
  bumpAccessVersion(): Promise<number>;
  /** Raises the version to at least `version` (never lowers it); returns the version now stored. */
  raiseAccessVersion(version: number): Promise<number>;
  markAccessPublished(version: number, hash: string): Promise<void>;
}

interface Row {
  name: string;
  position: number;
  body: string;
  created_at: string;
  updated_at: string;
}

/** access_rules and access_state. */
export class SqliteAccessRules implements Sync<AccessRuleStore> {
  private readonly all: Statement;
  private readonly one: Statement;
  private readonly upsert: Statement;
  private readonly remove: Statement;
  private readonly state: Statement;
  private readonly bump: Statement;
  private readonly raise: Statement;
  private readonly published: Statement;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    this.all = db.prepare('SELECT * FROM access_rules ORDER BY position, name');
    this.one = db.prepare('SELECT * FROM access_rules WHERE name = ?');
    this.upsert = db.prepare(
      `INSERT INTO access_rules (name, position, body, created_at, updated_at) VALUES (@name, @position, @body, @at, @at)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, body = excluded.body, updated_at = excluded.updated_at
       WHERE access_rules.body IS NOT excluded.body OR access_rules.position IS NOT excluded.position`,
    );
    this.remove = db.prepare('DELETE FROM access_rules WHERE name = ?');
    this.state = db.prepare(
      'SELECT version, published_version, published_hash FROM access_state WHERE id = 1',
    );
    this.bump = db
      .prepare('UPDATE access_state SET version = version + 1 WHERE id = 1 RETURNING version')
      .pluck();
    this.raise = db
      .prepare('UPDATE access_state SET version = max(version, ?) WHERE id = 1 RETURNING version')
      .pluck();
    this.published = db.prepare(
      'UPDATE access_state SET published_version = ?, published_hash = ? WHERE id = 1',
    );
  }

  private toRule(r: Row): StoredRule {
    return {
      rule: JSON.parse(r.body) as AccessRule,
      position: r.position,
      createdAt: fromIso(r.created_at),
      updatedAt: fromIso(r.updated_at),
    };
  }

  listRules(): StoredRule[] {
    return (this.all.all() as Row[]).map((r) => this.toRule(r));
  }

  getRule(name: string): StoredRule | undefined {
    const r = this.one.get(name) as Row | undefined;
    return r && this.toRule(r);
  }

  putRule(rule: AccessRule, position: number): boolean {
    const name = nonEmpty('name', rule.name);
    return this.tx(
      () =>
        this.upsert.run({
          name,
          position: intAtLeast('position', position, 0),
          body: JSON.stringify(rule),
          at: new Date().toISOString(),
        }).changes > 0,
    );
  }

  deleteRule(name: string): void {
    if (this.remove.run(name).changes === 0) throw new NotFound(`rule '${name}' does not exist`);
  }

  getAccessState(): AccessState {
    const r = this.state.get() as {
      version: number;
      published_version: number;
      published_hash: string | null;
    };
    return { version: r.version, publishedVersion: r.published_version, publishedHash: r.published_hash };
  }

  bumpAccessVersion(): number {
    return this.bump.get() as number;
  }

  raiseAccessVersion(version: number): number {
    return this.raise.get(intAtLeast('version', version, 1)) as number;
  }

  markAccessPublished(version: number, hash: string): void {
    this.published.run(version, hash);
  }
}
