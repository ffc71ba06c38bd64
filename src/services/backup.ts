/**
 * Backup and restore of a whole data dir: the SQLite database (users, certificates, revocations, the
 * CRL and its number, the encrypted server identity and tls-crypt keys, stored cluster discovery,
 * audit log), the CA certificate and its encrypted key, and the key file that protects it when no CA
 * passphrase is configured. `server/` is left out: `server run` writes it again from the database.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Config } from '../config/schema.js';
import { AppError, BadRequest, Conflict } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { PACKAGE_ROOT } from '../lib/templates.js';
import { CertificateAuthority, decryptPrivateKey, type KeySecret } from '../pki/index.js';
import { backupDatabase, inspectDatabase } from '../store/backup.js';
import { DB_FILE_NAME, SqliteStore } from '../store/index.js';
import {
  decodeBackup,
  encodeBackup,
  type BackupEntry,
  type BackupInfo,
  type DecodedBackup,
} from './backup-format.js';
import { CA_CERT_FILE, CA_KEY_FILE } from './ca-files.js';
import { KEK_FILE, resolveKeySecret } from './key-secret.js';

const log = logger.child({ module: 'backup' });

/** The release written into every backup (informational; the format version is what decode checks). */
export const PODGATE_VERSION: string = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

/** Top-level names that are never archived: the live database files (copied through SQLite) and runtime files. */
const SKIPPED_TOP = new Set([
  'server',
  DB_FILE_NAME,
  `${DB_FILE_NAME}-wal`,
  `${DB_FILE_NAME}-shm`,
  `${DB_FILE_NAME}-journal`,
]);

export interface CreatedBackup {
  data: Buffer;
  info: BackupInfo;
  sha256: string;
}

/**
 * Regular files of the data dir worth keeping, relative paths with forward slashes. Hidden names are
 * temporary files of atomic writes; `exclude` keeps a backup directory inside the data dir out.
 */
function dataDirFiles(dataDir: string, exclude: readonly string[]): BackupEntry[] {
  const out: BackupEntry[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const rel = relative(dataDir, full).split(sep).join('/');
      if (name.startsWith('.') || (dir === dataDir && SKIPPED_TOP.has(name))) continue;
      if (exclude.some((e) => full === e || full.startsWith(e + sep))) continue;
      const st = lstatSync(full);
      if (st.isDirectory()) walk(full);
      else if (st.isFile()) out.push({ path: rel, mode: st.mode & 0o777, data: readFileSync(full) });
    }
  };
  walk(dataDir);
  return out;
}

/**
 * Makes a backup of `dataDir` while other processes keep using it. The files are read first: they
 * only ever appear, never change, so the database copy taken after them cannot name a certificate
 * their CA does not know. The copy is checked with `integrity_check` before it is packed.
 */
export async function createBackup(o: {
  dataDir: string;
  passphrase: string;
  now?: Date;
  exclude?: string[];
}): Promise<CreatedBackup> {
  const dataDir = resolve(o.dataDir);
  const dbFile = join(dataDir, DB_FILE_NAME);
  if (!existsSync(dbFile)) throw new BadRequest(`${dataDir} holds no podgate database`, 'dataDir');
  const files = dataDirFiles(
    dataDir,
    (o.exclude ?? []).map((e) => resolve(e)),
  );
  const work = mkdtempSync(join(tmpdir(), 'podgate-backup-'));
  try {
    const copy = join(work, DB_FILE_NAME);
    await backupDatabase(dbFile, copy);
    const summary = inspectDatabase(copy);
    const info: BackupInfo = {
      createdAt: (o.now ?? new Date()).toISOString(),
      podgateVersion: PODGATE_VERSION,
      ...summary,
    };
    const entries = [{ path: DB_FILE_NAME, mode: 0o600, data: readFileSync(copy) }, ...files];
    const data = encodeBackup(entries, info, o.passphrase);
    const sha256 = createHash('sha256').update(data).digest('hex');
    log.info(
      { dataDir, bytes: data.length, certificates: info.certificates, crlNumber: info.crlNumber },
      'backup made',
    );
    return { data, info, sha256 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The secret the CA key in the backup is encrypted with: its key file, or the configured passphrase. */
function backupKeySecret(byPath: Map<string, BackupEntry>, config: Config): KeySecret {
  const kek = byPath.get(KEK_FILE);
  if (kek) {
    const key = Buffer.from(kek.data.toString('utf8').trim(), 'base64');
    if (key.length !== 32)
      throw new BadRequest(`the backup's ${KEK_FILE} does not hold a 32-byte key`, 'backup');
    return { kek: key };
  }
  if (!config.ca.passphraseFile) {
    throw new BadRequest(
      'the CA key in this backup is protected by a CA passphrase: set ca.passphraseFile so restore can check it',
      'ca.passphraseFile',
    );
  }
  return resolveKeySecret(config, '/nonexistent', false);
}

/** Everything restore checks before it writes: the CA opens with its key, the server key decrypts. */
function verifyCa(byPath: Map<string, BackupEntry>, config: Config): CertificateAuthority {
  for (const f of [DB_FILE_NAME, CA_CERT_FILE, CA_KEY_FILE]) {
    if (!byPath.has(f)) throw new BadRequest(`the backup has no ${f}`, 'backup');
  }
  const secret = backupKeySecret(byPath, config);
  let keyPem: string;
  try {
    keyPem = decryptPrivateKey(byPath.get(CA_KEY_FILE)!.data.toString('utf8'), secret);
  } catch (err) {
    throw new AppError(
      400,
      'bad_ca_secret',
      'the CA key in the backup cannot be decrypted with its key file or ca.passphraseFile',
      {
        cause: err,
        field: 'ca.passphraseFile',
      },
    );
  }
  try {
    return CertificateAuthority.load({ certPem: byPath.get(CA_CERT_FILE)!.data.toString('utf8'), keyPem });
  } catch (err) {
    throw new AppError(400, 'bad_ca', 'the CA certificate and key in the backup do not belong together', {
      cause: err,
    });
  }
}

/**
 * Re-signs the restored CRL (same entries) as `above + 1` when its number is not above `above`;
 * returns the new number, or undefined when nothing was needed.
 */
function renumberCrl(
  store: SqliteStore,
  ca: CertificateAuthority,
  above: number | undefined,
  crlDays: number,
  now: Date,
): number | undefined {
  const current = store.getCrl();
  if (above === undefined || (current && current.number > above)) return undefined;
  const number = above + 1;
  const entries = store
    .listRevoked()
    .map((r) => ({
      serial: r.serial,
      commonName: r.commonName,
      revokedAt: r.revokedAt!,
      reason: r.revocationReason!,
    }))
    .sort((a, b) => a.revokedAt.getTime() - b.revokedAt.getTime());
  const pem = ca.buildCrl({ number, entries, nextUpdateDays: crlDays, now });
  store.saveCrl({
    number,
    pem,
    thisUpdate: new Date(now.getTime() - 5 * 60_000),
    nextUpdate: new Date(now.getTime() + crlDays * 86_400_000),
  });
  return number;
}

/** True when `dir` does not exist or is an empty directory. */
function emptyOrMissing(dir: string): boolean {
  if (!existsSync(dir)) return true;
  return statSync(dir).isDirectory() && readdirSync(dir).length === 0;
}

export interface RestoreResult {
  dataDir: string;
  info: BackupInfo;
  files: number;
  /** The CRL number of the restored data dir (the backup's, or the re-signed one). */
  crlNumber: number | null;
}

/**
 * Restores a backup into `dataDir`, which must be missing or empty. The whole file is authenticated,
 * every file checked against its checksum, the database checked with `integrity_check`, the CA key
 * decrypted and matched to its certificate, all in a staging directory next to the target; only then
 * does one rename put the data dir in place. Any failure leaves the target as it was.
 * The restored database is migrated to this podgate's schema and gets a `backup.restore` audit row.
 */
export function restoreBackup(o: {
  file: Buffer;
  passphrase: string;
  dataDir: string;
  config: Config;
  actor: string;
  /**
   * The highest CRL number the VPN server may already have seen (from a CRL published after the
   * backup was taken). The agent refuses a CRL whose number is lower than the one in force, so the
   * restored CRL is re-signed as this number + 1 when the backup's is not above it.
   */
  crlNumberAbove?: number;
  now?: Date;
}): RestoreResult {
  const target = resolve(o.dataDir);
  const notEmpty = () =>
    new Conflict(`${target} is not empty: restore writes only into a new or empty directory`, 'dataDir');
  if (!emptyOrMissing(target)) throw notEmpty();
  const decoded: DecodedBackup = decodeBackup(o.file, o.passphrase);
  const byPath = new Map(decoded.entries.map((e) => [e.path, e]));
  const ca = verifyCa(byPath, o.config);

  mkdirSync(dirname(target), { recursive: true });
  const staging = mkdtempSync(join(dirname(target), `.${basename(target)}.restore-`));
  let renumbered: number | undefined;
  try {
    for (const e of decoded.entries) {
      const path = join(staging, ...e.path.split('/'));
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, e.data, { mode: e.mode });
    }
    inspectDatabase(join(staging, DB_FILE_NAME));
    const store = SqliteStore.open(join(staging, DB_FILE_NAME));
    try {
      renumbered = renumberCrl(store, ca, o.crlNumberAbove, o.config.vpn.crlDays, o.now ?? new Date());
      store.appendAudit({
        actor: o.actor,
        action: 'backup.restore',
        target,
        result: 'ok',
        details: {
          backupCreatedAt: decoded.info.createdAt,
          podgateVersion: decoded.info.podgateVersion,
          certificates: decoded.info.certificates,
          crlNumber: renumbered ?? decoded.info.crlNumber,
          ...(renumbered ? { crlRenumberedFrom: decoded.info.crlNumber } : {}),
        },
      });
    } finally {
      store.close();
    }
    if (!emptyOrMissing(target)) throw notEmpty(); // something wrote there meanwhile: leave it alone
    if (existsSync(target)) rmdirSync(target);
    renameSync(staging, target);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  log.info({ dataDir: target, certificates: decoded.info.certificates }, 'backup restored');
  return {
    dataDir: target,
    info: decoded.info,
    files: decoded.entries.length,
    crlNumber: renumbered ?? decoded.info.crlNumber,
  };
}
