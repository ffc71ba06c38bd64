import type { Database, Statement } from 'better-sqlite3';
import { BadRequest, Conflict } from '../lib/errors.js';
import { fromIso, intAtLeast, nonEmpty, text, toIso, toJsonObject, type Sync } from './sql-util.js';
import type { ClusterSnapshot, ClusterStore, CrlState, CrlStore, SettingsStore } from './types.js';

const CLUSTER_KEY = 'cluster.snapshot';

/** The crl_state row, as both engines return it. */
export interface CrlRow {
  number: number;
  pem: string;
  this_update: string;
  next_update: string;
}

export const toCrlState = (r: CrlRow): CrlState => ({
  number: r.number,
  pem: r.pem,
  thisUpdate: fromIso(r.this_update),
  nextUpdate: fromIso(r.next_update),
});

/** The named parameters of saveCrl (checked; nextUpdate after thisUpdate). */
export function crlParams(state: CrlState): {
  number: number;
  pem: string;
  thisUpdate: string;
  nextUpdate: string;
} {
  const params = {
    number: intAtLeast('number', state.number, 0),
    pem: nonEmpty('pem', state.pem),
    thisUpdate: toIso('thisUpdate', state.thisUpdate),
    nextUpdate: toIso('nextUpdate', state.nextUpdate),
  };
  if (params.nextUpdate <= params.thisUpdate) {
    throw new BadRequest('nextUpdate must be after thisUpdate', 'nextUpdate');
  }
  return params;
}

/** Single-row CRL state, key/value settings, and the cluster snapshot kept in settings as JSON. */
export class SqliteState implements Sync<CrlStore>, Sync<SettingsStore>, Sync<ClusterStore> {
  private readonly crlGet: Statement;
  private readonly crlSave: Statement;
  private readonly settingGet: Statement;
  private readonly settingSet: Statement;

  constructor(db: Database) {
    this.crlGet = db.prepare('SELECT number, pem, this_update, next_update FROM crl_state WHERE id = 1');
    // the WHERE turns a non-increasing number into "0 rows changed" in the same statement: no race
    this.crlSave = db.prepare(
      `INSERT INTO crl_state (id, number, pem, this_update, next_update)
       VALUES (1, @number, @pem, @thisUpdate, @nextUpdate)
       ON CONFLICT (id) DO UPDATE SET number = excluded.number, pem = excluded.pem,
         this_update = excluded.this_update, next_update = excluded.next_update
       WHERE excluded.number > crl_state.number`,
    );
    this.settingGet = db.prepare('SELECT value FROM settings WHERE key = ?').pluck();
    this.settingSet = db.prepare(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
  }

  getCrl(): CrlState | undefined {
    const r = this.crlGet.get() as CrlRow | undefined;
    return r && toCrlState(r);
  }

  saveCrl(state: CrlState): void {
    const params = crlParams(state);
    if (this.crlSave.run(params).changes === 0) {
      const current = this.getCrl()?.number;
      throw new Conflict(`CRL number ${params.number} is not greater than the saved ${current}`, 'number');
    }
  }

  getSetting(key: string): string | undefined {
    return this.settingGet.get(key) as string | undefined;
  }

  setSetting(key: string, value: string): void {
    this.settingSet.run(nonEmpty('key', key), text('value', value));
  }

  getClusterSnapshot(): ClusterSnapshot | undefined {
    const raw = this.getSetting(CLUSTER_KEY);
    if (raw === undefined) return undefined;
    const parsed = JSON.parse(raw) as { discoveredAt: string; data: Record<string, unknown> };
    return { discoveredAt: fromIso(parsed.discoveredAt), data: parsed.data };
  }

  saveClusterSnapshot(s: ClusterSnapshot): void {
    const discoveredAt = toIso('discoveredAt', s.discoveredAt);
    toJsonObject('data', s.data);
    this.setSetting(CLUSTER_KEY, JSON.stringify({ discoveredAt, data: s.data }));
  }
}
