import type { Database, Statement } from 'better-sqlite3';
import { fromIso, intAtLeast, nonEmpty, toIso, type Tx, type Sync } from './sql-util.js';
import type { PendingRevocation, PendingStore } from './types.js';

interface PendingRow {
  serial: string;
  common_name: string;
  crl_number: number;
  queued_at: string;
}

/** The agent's durable queue: revocations in the CRL file whose live sessions are not yet killed. */
export class SqlitePending implements Sync<PendingStore> {
  private readonly add: Statement;
  private readonly list: Statement;
  private readonly clear: Statement;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    // queued_at is kept from the first sighting: it measures how long the revocation has been waiting
    this.add = db.prepare(
      `INSERT INTO pending_revocations (serial, common_name, crl_number, queued_at)
       VALUES (@serial, @commonName, @crlNumber, @queuedAt)
       ON CONFLICT (serial) DO UPDATE SET common_name = excluded.common_name,
         crl_number = max(crl_number, excluded.crl_number)`,
    );
    this.list = db.prepare(
      'SELECT serial, common_name, crl_number, queued_at FROM pending_revocations ORDER BY queued_at, serial',
    );
    this.clear = db.prepare('DELETE FROM pending_revocations WHERE serial = ?');
  }

  addPending(p: PendingRevocation): void {
    this.add.run({
      serial: nonEmpty('serial', p.serial),
      commonName: nonEmpty('commonName', p.commonName),
      crlNumber: intAtLeast('crlNumber', p.crlNumber, 0),
      queuedAt: toIso('queuedAt', p.queuedAt),
    });
  }

  listPending(): PendingRevocation[] {
    return (this.list.all() as PendingRow[]).map((r) => ({
      serial: r.serial,
      commonName: r.common_name,
      crlNumber: r.crl_number,
      queuedAt: fromIso(r.queued_at),
    }));
  }

  clearPending(serials: readonly string[]): number {
    return this.tx(() => serials.reduce((n, s) => n + this.clear.run(s).changes, 0));
  }
}
