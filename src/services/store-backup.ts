/**
 * Backup and restore for either store engine, in one archive format (services/backup-format.ts): a
 * SQLite database file plus the CA files. On SQLite that is the data dir (services/backup.ts). On
 * PostgreSQL the rows are written into a SQLite file of this podgate's schema from one consistent
 * snapshot, and the CA files come from the database's shared files; restore copies such a file into an
 * empty PostgreSQL database the way `podgate store migrate` does. So a backup taken on one engine
 * restores on the other.
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { storeTarget } from '../config/load.js';
import type { StoreTarget } from '../config/store-schema.js';
import { AppError, BadRequest, Conflict } from '../lib/errors.js';
import { makeScratchDir, removeStaleScratchDirs } from '../lib/fs-atomic.js';
import { logger } from '../lib/logger.js';
import { inspectDatabase } from '../store/backup.js';
import { DB_FILE_NAME, SqliteStore } from '../store/index.js';
import type { NewAuditEntry, Store } from '../store/types.js';
import { decodeBackup, encodeBackup, type BackupInfo } from './backup-format.js';
import {
  createBackup,
  PODGATE_VERSION,
  restoreBackup,
  stageBackup,
  type CreatedBackup,
  type RestoreResult,
} from './backup.js';
import { CA_CERT_FILE, CA_KEY_FILE, SHARED_CA_FILES } from './ca-files.js';
import { secureDataDir } from './data-dir.js';

const log = logger.child({ module: 'backup' });

type PgTarget = Extract<StoreTarget, { engine: 'postgres' }>;

/**
 * A backup of the store `config` names: the data dir on SQLite (createBackup); on PostgreSQL the
 * database's rows, read in one REPEATABLE READ snapshot while replicas keep writing, and its CA files.
 * `dataDir` holds the scratch dir of the copy (removed before returning; a killed backup's is removed
 * at the next start).
 */
export async function createStoreBackup(o: {
  config: Config;
  dataDir: string;
  passphrase: string;
  now?: Date;
  exclude?: string[];
}): Promise<CreatedBackup> {
  const target = storeTarget(o.config);
  if (target.engine === 'sqlite') return createBackup(o);
  const { snapshotPgToSqlite } = await import('../store/pg/copy-to-sqlite.js');
  const dataDir = resolve(o.dataDir);
  secureDataDir(dataDir);
  const work = makeScratchDir(dataDir, 'backup');
  try {
    const file = join(work, DB_FILE_NAME);
    const snap = await snapshotPgToSqlite(target, file, SHARED_CA_FILES);
    for (const f of [CA_CERT_FILE, CA_KEY_FILE]) {
      if (!snap.files.some((e) => e.name === f)) {
        throw new AppError(500, 'backup_incomplete', `${target.display} holds no ${f}: nothing written`, {
          field: 'store.url',
        });
      }
    }
    const info: BackupInfo = {
      createdAt: (o.now ?? new Date()).toISOString(),
      podgateVersion: PODGATE_VERSION,
      ...inspectDatabase(file),
    };
    const entries = [
      { path: DB_FILE_NAME, mode: 0o600, data: readFileSync(file) },
      ...snap.files.map((f) => ({ path: f.name, mode: 0o600, data: f.content })),
    ];
    const data = encodeBackup(entries, info, o.passphrase);
    const sha256 = createHash('sha256').update(data).digest('hex');
    log.info(
      {
        store: target.display,
        bytes: data.length,
        certificates: info.certificates,
        crlNumber: info.crlNumber,
      },
      'backup made',
    );
    return { data, info, sha256 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Restores a backup (made on either engine) into the store `config` names: a new or empty data dir on
 * SQLite (restoreBackup); on PostgreSQL an empty database (no users, certificates or audit entries).
 * The archive is staged and checked in a scratch dir under the data dir first (the CA must open with
 * ca.passphraseFile, which every replica uses on PostgreSQL), then copied in one transaction and
 * counted back. A refusal or failure leaves the database without podgate rows.
 */
export async function restoreStoreBackup(o: {
  file: Buffer;
  passphrase: string;
  config: Config;
  actor: string;
  crlNumberAbove?: number;
  now?: Date;
}): Promise<RestoreResult> {
  const target = storeTarget(o.config);
  if (target.engine === 'sqlite') return restoreBackup({ ...o, dataDir: o.config.dataDir });
  if (!o.config.ca.passphraseFile) {
    throw new BadRequest(
      'ca.passphraseFile is required to restore into PostgreSQL (every replica opens the CA key with it)',
      'ca.passphraseFile',
    );
  }
  const decoded = decodeBackup(o.file, o.passphrase);
  await refuseNonEmpty(target);
  const { copySqliteToPg } = await import('../store/pg/copy-from-sqlite.js');
  const dataDir = resolve(o.config.dataDir);
  secureDataDir(dataDir);
  removeStaleScratchDirs(dataDir);
  const staging = makeScratchDir(dataDir, 'restore');
  try {
    const renumbered = await stageBackup(decoded, staging, { ...o, target: target.display });
    await copySqliteToPg(join(staging, DB_FILE_NAME), target, { dir: staging, pattern: SHARED_CA_FILES });
    log.info({ store: target.display, certificates: decoded.info.certificates }, 'backup restored');
    return {
      dataDir: target.display,
      info: decoded.info,
      files: decoded.entries.length,
      crlNumber: renumbered ?? decoded.info.crlNumber,
    };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Refused before anything is checked or migrated: a database holding podgate rows (the copy refuses
 * it again inside its transaction, for a writer that came meanwhile).
 */
async function refuseNonEmpty(target: PgTarget): Promise<void> {
  const { loadPg, clientConfig } = await import('../store/pg/connection.js');
  const pg = await loadPg();
  const client = new pg.Client(clientConfig(target, 'podgate-restore'));
  await client.connect();
  try {
    const exists = await client.query<{ t: string | null }>("SELECT to_regclass('users')::text AS t");
    if (exists.rows[0]?.t === null || exists.rows[0]?.t === undefined) return;
    const r = await client.query<{ n: string }>(
      'SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM certificates) + (SELECT count(*) FROM audit_log) AS n',
    );
    if (Number(r.rows[0]!.n) > 0) {
      throw new Conflict(
        `${target.display} already holds podgate data (users, certificates or audit entries): restore writes only into an empty database; nothing was changed`,
        'store.url',
      );
    }
  } finally {
    await client.end();
  }
}

/** Appends an audit row to the store `config` names (a CLI backup, which has no context open). */
export async function auditToStore(config: Config, entry: NewAuditEntry): Promise<void> {
  const target = storeTarget(config);
  let store: Store;
  if (target.engine === 'sqlite') store = SqliteStore.open(join(resolve(config.dataDir), DB_FILE_NAME));
  else {
    const { PgStore } = await import('../store/pg/pg-store.js');
    store = await PgStore.open({ ...target, poolSize: 1 });
  }
  try {
    await store.appendAudit(entry);
  } finally {
    await store.close();
  }
}
