import type { AccessRule } from '../../access/types.js';
import { Conflict, NotFound } from '../../lib/errors.js';
import type { AccessState, StoredRule } from '../access-repo.js';
import {
  addressTaken,
  byAddress,
  onlyAddress,
  planAllocation,
  toAddress,
  type AddressRow,
  type AddressPool,
  type BulkAllocation,
  type DeviceAddress,
} from '../addresses-repo.js';
import type { LocalGroup } from '../groups-repo.js';
import {
  historyQuery,
  sampleParams,
  toSessionRecord,
  toUsageDay,
  type LiveSessionSample,
  type SessionEndReason,
  type SessionHistoryQuery,
  type SessionHistoryRecord,
  type SessionRow,
  type UsageDay,
  type UsageRow,
} from '../session-history-repo.js';
import { fromIso, intAtLeast, nonEmpty, text, toIso } from '../sql-util.js';
import { LOCK } from '../locks.js';
import {
  constraintError,
  FOREIGN_KEY_VIOLATION,
  lockInTransaction,
  pgCode,
  UNIQUE_VIOLATION,
  type PgDb,
} from './db.js';

/**
 * Tunnel addresses (PostgreSQL). Allocation takes a transaction-scoped advisory lock first, so two
 * replicas never pick the same lowest free address (the unique index would refuse the second anyway,
 * but as an error instead of the next free address).
 */
export class PgAddresses {
  constructor(private readonly db: PgDb) {}

  async getAddress(commonName: string): Promise<DeviceAddress | undefined> {
    const r = await this.db.get<AddressRow>('SELECT * FROM device_addresses WHERE common_name = ?', [
      commonName,
    ]);
    return r && toAddress(r);
  }

  async listAddresses(): Promise<DeviceAddress[]> {
    return byAddress(await this.db.all<AddressRow>('SELECT * FROM device_addresses'));
  }

  async allocateAddress(commonName: string, pool: AddressPool, at: Date): Promise<DeviceAddress> {
    return onlyAddress(await this.allocateAddresses([commonName], pool, at), pool);
  }

  /** Under the addresses lock: the table read once, one DELETE and one INSERT. */
  async allocateAddresses(
    commonNames: readonly string[],
    pool: AddressPool,
    at: Date,
  ): Promise<BulkAllocation> {
    const names = commonNames.map((cn) => nonEmpty('commonName', cn));
    return this.db.atomic(async (db) => {
      await lockInTransaction(db, LOCK.addresses);
      const rows = (await db.all<AddressRow>('SELECT * FROM device_addresses')).map(toAddress);
      const plan = planAllocation(names, pool, rows, at);
      if (plan.drop.length > 0)
        await db.run('DELETE FROM device_addresses WHERE common_name = ANY(?::text[])', [plan.drop]);
      const made = new Map<string, DeviceAddress>();
      if (plan.insert.length > 0) {
        const iso = at.toISOString();
        try {
          await db.atomic((inner) =>
            inner.run(
              `INSERT INTO device_addresses (common_name, address, allocated_at)
               SELECT cn, addr, ? FROM unnest(?::text[], ?::text[]) AS t(cn, addr)`,
              [iso, plan.insert.map((a) => a.commonName), plan.insert.map((a) => a.address)],
            ),
          );
        } catch (err) {
          throw constraintError(err, { unique: addressTaken });
        }
        for (const a of plan.insert) made.set(a.commonName, { ...a, allocatedAt: fromIso(iso) });
      }
      const allocated = [...new Set(names)].flatMap((cn) => {
        const a = plan.kept.get(cn) ?? made.get(cn);
        return a ? [a] : [];
      });
      return { allocated, refused: plan.refused };
    });
  }

  async releaseAddress(commonName: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM device_addresses WHERE common_name = ?', [commonName])) > 0;
  }
}

interface GroupRow {
  id: number;
  name: string;
  description: string;
  created_at: string;
  members: string[] | null;
}

const GROUP_SELECT = `SELECT g.id, g.name, g.description, g.created_at,
    (SELECT array_agg(u.name ORDER BY u.name) FROM local_group_members m JOIN users u ON u.id = m.user_id
      WHERE m.group_id = g.id) AS members
  FROM local_groups g`;

const toGroup = (r: GroupRow): LocalGroup => ({
  id: r.id,
  name: r.name,
  description: r.description,
  createdAt: fromIso(r.created_at),
  members: r.members ?? [],
});

/** Local groups and their members (PostgreSQL). */
export class PgGroups {
  constructor(private readonly db: PgDb) {}

  async createGroup(g: { name: string; description?: string }): Promise<LocalGroup> {
    const name = nonEmpty('name', g.name);
    const description = text('description', g.description ?? '');
    try {
      return await this.db.atomic(async (db) => {
        await db.run('INSERT INTO local_groups (name, description, created_at) VALUES (?, ?, ?)', [
          name,
          description,
          new Date().toISOString(),
        ]);
        return (await new PgGroups(db).getGroup(name))!;
      });
    } catch (err) {
      throw constraintError(err, { unique: () => new Conflict(`group '${name}' already exists`, 'name') });
    }
  }

  async getGroup(name: string): Promise<LocalGroup | undefined> {
    const r = await this.db.get<GroupRow>(`${GROUP_SELECT} WHERE g.name = ?`, [name]);
    return r && toGroup(r);
  }

  async listGroups(): Promise<LocalGroup[]> {
    return (await this.db.all<GroupRow>(`${GROUP_SELECT} ORDER BY g.name`)).map(toGroup);
  }

  async deleteGroup(name: string): Promise<void> {
    if ((await this.db.run('DELETE FROM local_groups WHERE name = ?', [name])) === 0) {
      throw new NotFound(`group '${name}' does not exist`);
    }
  }

  private async need(db: PgDb, group: string): Promise<LocalGroup> {
    const g = await new PgGroups(db).getGroup(group);
    if (!g) throw new NotFound(`group '${group}' does not exist`);
    return g;
  }

  async addGroupMember(group: string, userId: number): Promise<void> {
    try {
      await this.db.atomic(async (db) => {
        const g = await this.need(db, group);
        await db.run('INSERT INTO local_group_members (group_id, user_id, added_at) VALUES (?, ?, ?)', [
          g.id,
          userId,
          new Date().toISOString(),
        ]);
      });
    } catch (err) {
      const code = pgCode(err);
      if (code === UNIQUE_VIOLATION)
        throw new Conflict(`the user is already a member of group '${group}'`, 'user');
      if (code === FOREIGN_KEY_VIOLATION) throw new NotFound(`user ${userId} does not exist`);
      throw err;
    }
  }

  async removeGroupMember(group: string, userId: number): Promise<void> {
    await this.db.atomic(async (db) => {
      const g = await this.need(db, group);
      if (
        (await db.run('DELETE FROM local_group_members WHERE group_id = ? AND user_id = ?', [
          g.id,
          userId,
        ])) === 0
      ) {
        throw new NotFound(`the user is not a member of group '${group}'`);
      }
    });
  }

  async localGroupsOf(userId: number): Promise<string[]> {
    const rows = await this.db.all<{ name: string }>(
      `SELECT g.name FROM local_group_members m JOIN local_groups g ON g.id = m.group_id
       WHERE m.user_id = ? ORDER BY g.name`,
      [userId],
    );
    return rows.map((r) => r.name);
  }
}

interface RuleRow {
  name: string;
  position: number;
  body: string;
  created_at: string;
  updated_at: string;
}

const toRule = (r: RuleRow): StoredRule => ({
  rule: JSON.parse(r.body) as AccessRule,
  position: r.position,
  createdAt: fromIso(r.created_at),
  updatedAt: fromIso(r.updated_at),
});

/** access_rules and access_state (PostgreSQL). */
export class PgAccessRules {
  constructor(private readonly db: PgDb) {}

  async listRules(): Promise<StoredRule[]> {
    return (await this.db.all<RuleRow>('SELECT * FROM access_rules ORDER BY position, name')).map(toRule);
  }

  async getRule(name: string): Promise<StoredRule | undefined> {
    const r = await this.db.get<RuleRow>('SELECT * FROM access_rules WHERE name = ?', [name]);
    return r && toRule(r);
  }

  async putRule(rule: AccessRule, position: number): Promise<boolean> {
    const name = nonEmpty('name', rule.name);
    const n = await this.db.run(
      `INSERT INTO access_rules (name, position, body, created_at, updated_at) VALUES (@name, @position, @body, @at, @at)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, body = excluded.body, updated_at = excluded.updated_at
       WHERE access_rules.body IS DISTINCT FROM excluded.body OR access_rules.position IS DISTINCT FROM excluded.position`,
      {
        name,
        position: intAtLeast('position', position, 0),
        body: JSON.stringify(rule),
        at: new Date().toISOString(),
      },
    );
    return n > 0;
  }

  async deleteRule(name: string): Promise<void> {
    if ((await this.db.run('DELETE FROM access_rules WHERE name = ?', [name])) === 0) {
      throw new NotFound(`rule '${name}' does not exist`);
    }
  }

  async getAccessState(): Promise<AccessState> {
    const r = (await this.db.get<{
      version: number;
      published_version: number;
      published_hash: string | null;
    }>('SELECT version, published_version, published_hash FROM access_state WHERE id = 1'))!;
    return { version: r.version, publishedVersion: r.published_version, publishedHash: r.published_hash };
  }

  async bumpAccessVersion(): Promise<number> {
    return (await this.db.get<{ version: number }>(
      'UPDATE access_state SET version = version + 1 WHERE id = 1 RETURNING version',
    ))!.version;
  }

  async raiseAccessVersion(version: number): Promise<number> {
    return (await this.db.get<{ version: number }>(
      'UPDATE access_state SET version = greatest(version, ?::bigint) WHERE id = 1 RETURNING version',
      [intAtLeast('version', version, 1)],
    ))!.version;
  }

  async markAccessPublished(version: number, hash: string): Promise<void> {
    await this.db.run('UPDATE access_state SET published_version = ?, published_hash = ? WHERE id = 1', [
      version,
      hash,
    ]);
  }
}

/** VPN session history (PostgreSQL). */
export class PgSessionHistory {
  constructor(private readonly db: PgDb) {}

  async recordSessions(replica: string, samples: readonly LiveSessionSample[], at: Date): Promise<void> {
    const rows = sampleParams(replica, samples, at);
    if (rows.length === 0) return;
    await this.db.atomic(async (db) => {
      for (const row of rows) {
        await db.run(
          `INSERT INTO vpn_sessions (replica, client_id, common_name, serial, user_name, device_name,
             real_address, virtual_address, started_at, last_seen_at, bytes_in, bytes_out)
           VALUES (@replica, @clientId, @commonName, @serial, @userName, @deviceName, @realAddress,
             @virtualAddress, @startedAt, @at, @bytesIn, @bytesOut)
           ON CONFLICT (replica, client_id, started_at) DO UPDATE SET last_seen_at = excluded.last_seen_at,
             bytes_in = greatest(vpn_sessions.bytes_in, excluded.bytes_in),
             bytes_out = greatest(vpn_sessions.bytes_out, excluded.bytes_out),
             virtual_address = excluded.virtual_address
           WHERE vpn_sessions.ended_at IS NULL`,
          row,
        );
      }
    });
  }

  async listOpenSessions(replica: string): Promise<SessionHistoryRecord[]> {
    return (
      await this.db.all<SessionRow>(
        'SELECT * FROM vpn_sessions WHERE replica = ? AND ended_at IS NULL ORDER BY id',
        [replica],
      )
    ).map(toSessionRecord);
  }

  async endSession(id: number, reason: SessionEndReason, endedAt?: Date): Promise<void> {
    await this.db.run(
      'UPDATE vpn_sessions SET ended_at = coalesce(?::text, last_seen_at), end_reason = ? WHERE id = ? AND ended_at IS NULL',
      [endedAt ? toIso('endedAt', endedAt) : null, reason, id],
    );
  }

  async listSessionHistory(q: SessionHistoryQuery = {}): Promise<SessionHistoryRecord[]> {
    const { sql, params } = historyQuery(q);
    return (await this.db.all<SessionRow>(sql, params)).map(toSessionRecord);
  }

  async usageByDay(since: Date, user?: string): Promise<UsageDay[]> {
    const params: unknown[] = [toIso('since', since)];
    if (user !== undefined) params.push(user);
    const rows = await this.db.all<UsageRow>(
      `SELECT substr(started_at, 1, 10) AS day, coalesce(user_name, '') AS user_name, common_name,
         count(*) AS sessions, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out
       FROM vpn_sessions WHERE started_at >= ? ${user !== undefined ? 'AND user_name = ?' : ''}
       GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      params,
    );
    return rows.map(toUsageDay);
  }

  pruneSessionHistory(before: Date): Promise<number> {
    return this.db.run('DELETE FROM vpn_sessions WHERE ended_at IS NOT NULL AND ended_at < ?', [
      toIso('before', before),
    ]);
  }
}
