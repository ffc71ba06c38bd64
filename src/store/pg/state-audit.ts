import { BadRequest, Conflict, NotFound } from '../../lib/errors.js';
import { fromIso, intAtLeast, nonEmpty, text, toIso, toJsonObject } from '../sql-util.js';
import type {
  AuditEntry,
  ClusterSnapshot,
  CrlState,
  GatewayRecord,
  NewAuditEntry,
  PendingRevocation,
} from '../types.js';
import { AUDIT_COLS, auditFilter, auditParams, toEntry, type AuditRow } from '../audit-repo.js';
import { GATEWAY_COLS, gatewayParams, toGateway, type GatewayRow } from '../gateways-repo.js';
import { LOCK } from '../locks.js';
import { crlParams, toCrlState, type CrlRow } from '../state-repo.js';
import { constraintError, lockInTransaction, type PgDb } from './db.js';

const CLUSTER_KEY = 'cluster.snapshot';

/**
 * crl_state, settings and the cluster snapshot (PostgreSQL); same rules as ../state-repo.ts.
 * getCrl inside a transaction first takes the CRL's transaction-scoped advisory lock: the only reason
 * to read it there is to write the next number, and a second revoker then waits for the first to
 * commit and builds on its number (READ COMMITTED would otherwise let both read N and one fail at
 * saving N+1).
 */
export class PgState {
  constructor(private readonly db: PgDb) {}

  async getCrl(): Promise<CrlState | undefined> {
    // FOR UPDATE locks only a row that exists: before the first CRL two writers would both read
    // "none" and both build number 1. A transaction-scoped advisory lock serialises them either way.
    if (this.db.inTransaction) await lockInTransaction(this.db, LOCK.crl);
    const r = await this.db.get<CrlRow>(
      'SELECT number, pem, this_update, next_update FROM crl_state WHERE id = 1',
    );
    return r && toCrlState(r);
  }

  async saveCrl(state: CrlState): Promise<void> {
    const params = crlParams(state);
    // the WHERE turns a non-increasing number into "0 rows" in the same statement: under READ COMMITTED
    // a concurrent writer's row is re-checked after its commit, so two writers cannot both save N+1
    const changed = await this.db.run(
      `INSERT INTO crl_state (id, number, pem, this_update, next_update)
       VALUES (1, @number, @pem, @thisUpdate, @nextUpdate)
       ON CONFLICT (id) DO UPDATE SET number = excluded.number, pem = excluded.pem,
         this_update = excluded.this_update, next_update = excluded.next_update
       WHERE excluded.number > crl_state.number`,
      params,
    );
    if (changed === 0) {
      const current = (await this.getCrl())?.number;
      throw new Conflict(`CRL number ${params.number} is not greater than the saved ${current}`, 'number');
    }
  }

  async getSetting(key: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [key]))?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.db.run(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [nonEmpty('key', key), text('value', value)],
    );
  }

  async getClusterSnapshot(): Promise<ClusterSnapshot | undefined> {
    const raw = await this.getSetting(CLUSTER_KEY);
    if (raw === undefined) return undefined;
    const parsed = JSON.parse(raw) as { discoveredAt: string; data: Record<string, unknown> };
    return { discoveredAt: fromIso(parsed.discoveredAt), data: parsed.data };
  }

  async saveClusterSnapshot(s: ClusterSnapshot): Promise<void> {
    const discoveredAt = toIso('discoveredAt', s.discoveredAt);
    toJsonObject('data', s.data);
    await this.setSetting(CLUSTER_KEY, JSON.stringify({ discoveredAt, data: s.data }));
  }
}

/** audit_log (PostgreSQL): append and read; triggers refuse UPDATE, DELETE and TRUNCATE. */
export class PgAudit {
  constructor(private readonly db: PgDb) {}

  async appendAudit(e: NewAuditEntry): Promise<AuditEntry> {
    const row = await this.db.get<AuditRow>(
      `INSERT INTO audit_log (time, actor, action, target, result, details)
       VALUES (@time, @actor, @action, @target, @result, @details) RETURNING ${AUDIT_COLS}`,
      auditParams(e),
    );
    return toEntry(row!);
  }

  async listAudit(
    q: { limit?: number; offset?: number; beforeId?: number; action?: string; target?: string } = {},
  ): Promise<AuditEntry[]> {
    const rows = await this.db.all<AuditRow>(
      `SELECT ${AUDIT_COLS} FROM audit_log
       WHERE (@action::text IS NULL OR action = @action) AND (@target::text IS NULL OR target = @target)
         AND (@before::bigint IS NULL OR id < @before)
       ORDER BY id DESC LIMIT @limit::bigint OFFSET @offset::bigint`,
      auditFilter(q),
    );
    return rows.map(toEntry);
  }

  async countAudit(q: { action?: string; target?: string } = {}): Promise<number> {
    const { action, target } = auditFilter(q);
    const r = await this.db.get<{ n: number }>(
      `SELECT count(*) AS n FROM audit_log
       WHERE (@action::text IS NULL OR action = @action) AND (@target::text IS NULL OR target = @target)`,
      { action, target },
    );
    return r!.n;
  }
}

interface PendingRow {
  serial: string;
  common_name: string;
  crl_number: number;
  queued_at: string;
}

/** The agent's durable queue (PostgreSQL). */
export class PgPending {
  constructor(private readonly db: PgDb) {}

  async addPending(p: PendingRevocation): Promise<void> {
    await this.db.run(
      `INSERT INTO pending_revocations (serial, common_name, crl_number, queued_at)
       VALUES (@serial, @commonName, @crlNumber, @queuedAt)
       ON CONFLICT (serial) DO UPDATE SET common_name = excluded.common_name,
         crl_number = greatest(pending_revocations.crl_number, excluded.crl_number)`,
      {
        serial: nonEmpty('serial', p.serial),
        commonName: nonEmpty('commonName', p.commonName),
        crlNumber: intAtLeast('crlNumber', p.crlNumber, 0),
        queuedAt: toIso('queuedAt', p.queuedAt),
      },
    );
  }

  async listPending(): Promise<PendingRevocation[]> {
    const rows = await this.db.all<PendingRow>(
      'SELECT serial, common_name, crl_number, queued_at FROM pending_revocations ORDER BY queued_at, serial',
    );
    return rows.map((r) => ({
      serial: r.serial,
      commonName: r.common_name,
      crlNumber: r.crl_number,
      queuedAt: fromIso(r.queued_at),
    }));
  }

  clearPending(serials: readonly string[]): Promise<number> {
    if (serials.length === 0) return Promise.resolve(0);
    return this.db.run('DELETE FROM pending_revocations WHERE serial = ANY(?::text[])', [[...serials]]);
  }
}

/** Office gateways (PostgreSQL). */
export class PgGateways {
  constructor(private readonly db: PgDb) {}

  async upsertGateway(g: GatewayRecord): Promise<GatewayRecord> {
    const params = gatewayParams(g);
    try {
      const r = await this.db.atomic((db) =>
        db.get<GatewayRow>(
          `INSERT INTO gateways (${GATEWAY_COLS}) VALUES (@name, @target, @certSerial, @status, @details, @updatedAt)
           ON CONFLICT (name) DO UPDATE SET target = excluded.target, cert_serial = excluded.cert_serial,
             status = excluded.status, details = excluded.details, updated_at = excluded.updated_at
           RETURNING ${GATEWAY_COLS}`,
          params,
        ),
      );
      return toGateway(r!);
    } catch (err) {
      throw constraintError(err, {
        foreignKey: () =>
          new BadRequest(`certSerial ${params.certSerial} is not a known certificate`, 'certSerial'),
      });
    }
  }

  async getGateway(name: string): Promise<GatewayRecord | undefined> {
    const r = await this.db.get<GatewayRow>(`SELECT ${GATEWAY_COLS} FROM gateways WHERE name = ?`, [name]);
    return r && toGateway(r);
  }

  async listGateways(): Promise<GatewayRecord[]> {
    return (await this.db.all<GatewayRow>(`SELECT ${GATEWAY_COLS} FROM gateways ORDER BY name`)).map(
      toGateway,
    );
  }

  async deleteGateway(name: string): Promise<void> {
    if ((await this.db.run('DELETE FROM gateways WHERE name = ?', [name])) === 0) {
      throw new NotFound(`gateway '${name}' not found`);
    }
  }
}
