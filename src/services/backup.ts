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
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Config } from '../config/schema.js';
import { AppError, BadRequest, Conflict } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { PACKAGE_ROOT } from '../lib/templates.js';
import { makeScratchDir, removeStaleScratchDirs } from '../lib/fs-atomic.js';
import { CertificateAuthority } from '../pki/index.js';
import { backupDatabase, inspectDatabase } from '../store/backup.js';
import { DB_FILE_NAME, SqliteStore } from '../store/index.js';
import {
  decodeBackup,
  encodeBackup,
  type BackupEntry,
  type BackupInfo,
  type DecodedBackup,
} from './backup-format.js';
import { CA_CERT_FILE, CA_KEY_FILE, readCaFiles, withCaLockAsync } from './ca-files.js';
import { fixedCaSet } from './ca-set.js';
import { secureDataDir } from './data-dir.js';
import { KEK_FILE, resolveKeySecret } from './key-secret.js';
import { RevocationService } from './revocation.js';

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

/** Test hook: called with the name of each point of a backup or restore (a crash test stops there). */
export type BackupProbe = (point: string) => void;

/**
 * Makes a backup of `dataDir` while other processes keep using it. The files are read and the
 * database copied while holding the CA lock (services/ca-files.ts): a `ca rotate` running meanwhile
 * waits, so the copy cannot name a CA the files do not hold. The copy is checked with
 * `integrity_check` before it is packed; it is made in a private scratch dir inside the data dir
 * (never the system temp dir), which a killed backup leaves for the next start to remove.
 * Throws when the CA files would not be in the archive (an `exclude` that covers them).
 */
export async function createBackup(o: {
  dataDir: string;
  passphrase: string;
  now?: Date;
  exclude?: string[];
  probe?: BackupProbe;
}): Promise<CreatedBackup> {
  const dataDir = resolve(o.dataDir);
  const dbFile = join(dataDir, DB_FILE_NAME);
  if (!existsSync(dbFile)) throw new BadRequest(`${dataDir} holds no podgate database`, 'dataDir');
  const work = makeScratchDir(dataDir, 'backup');
  try {
    const copy = join(work, DB_FILE_NAME);
    const files = await withCaLockAsync(dataDir, async () => {
      const found = dataDirFiles(
        dataDir,
        (o.exclude ?? []).map((e) => resolve(e)),
      );
      await backupDatabase(dbFile, copy);
      return found;
    });
    o.probe?.('backup:copied');
    for (const f of [CA_CERT_FILE, CA_KEY_FILE]) {
      if (!files.some((e) => e.path === f)) {
        throw new AppError(
          500,
          'backup_incomplete',
          `the backup would not hold ${f} (is backup.dir or --out the data dir or one of its parents?); nothing written`,
          { field: 'backup.dir' },
        );
      }
    }
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

/**
 * Checks that the restored CA files load the way every later command will load them: with the secret
 * the runtime resolves (ca.passphraseFile when it is set, else the restored ca-key.kek), the current
 * CA and, during a rotation's overlap, the previous one. Otherwise restore is refused, naming the field.
 */
function verifyCa(
  dir: string,
  config: Config,
): { ca: CertificateAuthority; previous?: CertificateAuthority } {
  for (const f of [DB_FILE_NAME, CA_CERT_FILE, CA_KEY_FILE]) {
    if (!existsSync(join(dir, f))) throw new BadRequest(`the backup has no ${f}`, 'backup');
  }
  const usesPassphrase = config.ca.passphraseFile !== undefined;
  if (!usesPassphrase && !existsSync(join(dir, KEK_FILE))) {
    throw new BadRequest(
      'the CA key in this backup is protected by a CA passphrase: set ca.passphraseFile so restore can check it',
      'ca.passphraseFile',
    );
  }
  const secret = resolveKeySecret(config, dir, false);
  try {
    return readCaFiles(dir, secret);
  } catch (err) {
    if (err instanceof AppError && err.code === 'ca_key_mismatch') {
      throw new AppError(400, 'bad_ca', 'the CA certificate and key in the backup do not belong together', {
        cause: err,
        field: 'backup',
      });
    }
    throw new AppError(
      400,
      'bad_ca_secret',
      usesPassphrase
        ? 'the CA key in the backup cannot be decrypted with ca.passphraseFile, which every command uses when it is set: ' +
            'set it to the passphrase the backup was made with, or unset it when the backup holds its key file (ca-key.kek)'
        : `the CA key in the backup cannot be decrypted with its key file ${KEK_FILE}`,
      { cause: err, field: usesPassphrase ? 'ca.passphraseFile' : 'backup' },
    );
  }
}

/** True when `dir` does not exist or is an empty directory (`ignore`: a name of our own inside it). */
function emptyOrMissing(dir: string, ignore?: string): boolean {
  if (!existsSync(dir)) return true;
  return statSync(dir).isDirectory() && readdirSync(dir).every((n) => n === ignore);
}

/**
 * Writes a decoded backup into `staging` and checks it the way restore must: the CA loads with the
 * secret the runtime will use, the database passes integrity_check and is migrated to this podgate's
 * schema; then the CRL is re-signed above `crlNumberAbove` (when given and needed) and a
 * `backup.restore` audit row naming `target` is added. Returns the new CRL number when it was
 * re-signed. The staged database is left checkpointed (no -wal content).
 */
export async function stageBackup(
  decoded: DecodedBackup,
  staging: string,
  o: {
    config: Config;
    actor: string;
    target: string;
    crlNumberAbove?: number;
    now?: Date;
    probe?: BackupProbe;
  },
): Promise<number | undefined> {
  let renumbered: number | undefined;
  for (const e of decoded.entries) {
    const path = join(staging, ...e.path.split('/'));
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, e.data, { mode: e.mode });
  }
  o.probe?.('restore:staged');
  const cas = verifyCa(staging, o.config);
  inspectDatabase(join(staging, DB_FILE_NAME));
  const store = SqliteStore.open(join(staging, DB_FILE_NAME));
  try {
    if (o.crlNumberAbove !== undefined) {
      const revocation = new RevocationService({
        store,
        cas: fixedCaSet(cas.ca, cas.previous),
        crlDays: o.config.vpn.crlDays,
        publishers: [],
        now: () => o.now ?? new Date(),
      });
      renumbered = (await revocation.resignAbove(o.crlNumberAbove))?.number;
    }
    await store.appendAudit({
      actor: o.actor,
      action: 'backup.restore',
      target: o.target,
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
    await store.close();
  }
  inspectDatabase(join(staging, DB_FILE_NAME)); // checkpointed: the file alone holds everything
  return renumbered;
}

export interface RestoreResult {
  dataDir: string;
  info: BackupInfo;
  files: number;
  /** The CRL number of the restored data dir (the backup's, or the re-signed one). */
  crlNumber: number | null;
}

/**
 * Restores a backup into `dataDir`, which must be missing or empty (an empty directory may be a mount
 * point: its contents are filled, the directory itself is never replaced). The whole file is
 * authenticated, every file checked against its checksum, all of it written into a private scratch dir
 * inside the target, then the database checked with `integrity_check` and the CA loaded the way the
 * runtime loads it; only then are the files moved into place (the database last). A failure before
 * that leaves the target as it was; a kill leaves the scratch dir, which the next start (or restore)
 * removes. The restored database is migrated to this podgate's schema and gets a `backup.restore`
 * audit row.
 */
export async function restoreBackup(o: {
  file: Buffer;
  passphrase: string;
  dataDir: string;
  config: Config;
  actor: string;
  /**
   * The highest CRL number the VPN server may already have seen (from a CRL published after the
   * backup was taken). The agent refuses a CRL whose number is lower than the one in force, so the
   * restored CRL is re-signed (one per CA in force) as this number + 1 when the backup's is not above it.
   */
  crlNumberAbove?: number;
  now?: Date;
  probe?: BackupProbe;
}): Promise<RestoreResult> {
  const target = resolve(o.dataDir);
  const notEmpty = () =>
    new Conflict(`${target} is not empty: restore writes only into a new or empty directory`, 'dataDir');
  removeStaleScratchDirs(target);
  if (!emptyOrMissing(target)) throw notEmpty();
  const decoded: DecodedBackup = decodeBackup(o.file, o.passphrase);

  const created = !existsSync(target);
  secureDataDir(target); // made 0700, or an existing one tightened like at every start
  const staging = makeScratchDir(target, 'restore');
  let renumbered: number | undefined;
  try {
    renumbered = await stageBackup(decoded, staging, { ...o, target });
    // something wrote there meanwhile: leave it alone
    if (!emptyOrMissing(target, basename(staging))) throw notEmpty();
    const names = readdirSync(staging).sort(
      (a, b) => Number(a === DB_FILE_NAME) - Number(b === DB_FILE_NAME),
    );
    for (const name of names) {
      renameSync(join(staging, name), join(target, name));
      o.probe?.(`restore:moved:${name}`);
    }
    rmdirSync(staging);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    if (created) rmSync(target, { recursive: true, force: true });
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
