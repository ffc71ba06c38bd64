import type { Database, Statement } from 'better-sqlite3';
import { BadRequest, NotFound } from '../lib/errors.js';
import { fromIso, nonEmpty, sqliteCode, text, toIso, toJsonObject, type Sync } from './sql-util.js';
import type { GatewayRecord, GatewayStore } from './types.js';

/** The gateways columns every read returns (both engines). */
export const GATEWAY_COLS = 'name, target, cert_serial, status, details, updated_at';

/** A gateways row, as both engines return it. */
export interface GatewayRow {
  name: string;
  target: string;
  cert_serial: string | null;
  status: string;
  details: string;
  updated_at: string;
}

export function toGateway(r: GatewayRow): GatewayRecord {
  return {
    name: r.name,
    target: r.target,
    certSerial: r.cert_serial,
    status: r.status,
    details: JSON.parse(r.details) as Record<string, unknown>,
    updatedAt: fromIso(r.updated_at),
  };
}

/** The named parameters of upsertGateway (checked). */
export function gatewayParams(g: GatewayRecord): Record<string, string | null> {
  return {
    name: nonEmpty('name', g.name),
    target: text('target', g.target),
    certSerial: g.certSerial === null ? null : nonEmpty('certSerial', g.certSerial),
    status: nonEmpty('status', g.status),
    details: toJsonObject('details', g.details),
    updatedAt: toIso('updatedAt', g.updatedAt),
  };
}

/** Office gateways provisioned over SSH, by name. */
export class SqliteGateways implements Sync<GatewayStore> {
  private readonly upsert: Statement;
  private readonly byName: Statement;
  private readonly all: Statement;
  private readonly remove: Statement;

  constructor(db: Database) {
    const cols = GATEWAY_COLS;
    this.upsert = db.prepare(
      `INSERT INTO gateways (${cols}) VALUES (@name, @target, @certSerial, @status, @details, @updatedAt)
       ON CONFLICT (name) DO UPDATE SET target = excluded.target, cert_serial = excluded.cert_serial,
         status = excluded.status, details = excluded.details, updated_at = excluded.updated_at
       RETURNING ${cols}`,
    );
    this.byName = db.prepare(`SELECT ${cols} FROM gateways WHERE name = ?`);
    this.all = db.prepare(`SELECT ${cols} FROM gateways ORDER BY name`);
    this.remove = db.prepare('DELETE FROM gateways WHERE name = ?');
  }

  upsertGateway(g: GatewayRecord): GatewayRecord {
    const params = gatewayParams(g);
    try {
      return toGateway(this.upsert.get(params) as GatewayRow);
    } catch (err) {
      if (sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new BadRequest(`certSerial ${params.certSerial} is not a known certificate`, 'certSerial');
      }
      throw err;
    }
  }

  getGateway(name: string): GatewayRecord | undefined {
    const r = this.byName.get(name) as GatewayRow | undefined;
    return r && toGateway(r);
  }

  listGateways(): GatewayRecord[] {
    return (this.all.all() as GatewayRow[]).map(toGateway);
  }

  deleteGateway(name: string): void {
    if (this.remove.run(name).changes === 0) throw new NotFound(`gateway '${name}' not found`);
  }
}
