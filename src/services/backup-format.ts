/**
 * The podgate backup file: a versioned, passphrase-encrypted archive of a data dir's files.
 *
 * Layout (all integers big-endian):
 *   "PGBACKUP" (8 bytes) | format version (1 byte) | header length (4 bytes) | header JSON
 *   | AES-256-GCM ciphertext | GCM tag (16 bytes)
 * The header names the cipher, the scrypt parameters, salt, IV and creation time; everything before the
 * ciphertext is GCM additional data, so a changed version, KDF or time fails authentication like a
 * wrong passphrase does. The plaintext is gzip of: manifest length (4 bytes) | manifest JSON | the files'
 * bytes in manifest order. Every file carries its SHA-256, checked on decode.
 *
 * Pure: no file system. Decoding returns everything in memory or throws; nothing is written by a
 * caller until decode has verified the whole file.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { BadRequest } from '../lib/errors.js';

export const BACKUP_MAGIC = Buffer.from('PGBACKUP', 'ascii');
/** The only format this code writes; decode refuses newer ones with a message saying so. */
export const BACKUP_FORMAT_VERSION = 1;
const PREFIX = BACKUP_MAGIC.length + 1 + 4;
const TAG_BYTES = 16;
/** scrypt N=2^15, r=8, p=1: ~0.1 s and 32 MiB per backup or restore. */
const SCRYPT = { N: 32768, r: 8, p: 1 } as const;
/** A crafted header cannot ask for more than ~256 MiB of scrypt memory. */
const MAX_SCRYPT_N = 1 << 18;
const MAX_HEADER_BYTES = 4096;
/** Upper bound for the unpacked archive (a gzip bomb stops here). */
const MAX_PLAINTEXT_BYTES = 4 * 1024 ** 3 - 1;
export const MIN_PASSPHRASE_LENGTH = 12;
export const WRONG_BACKUP_PASSPHRASE = 'cannot decrypt the backup: wrong passphrase, or the file was altered';

export interface BackupHeader {
  cipher: 'aes-256-gcm';
  kdf: { name: 'scrypt'; salt: string; N: number; r: number; p: number };
  iv: string;
  createdAt: string;
}

/** One file of the archive: a path relative to the data dir (forward slashes) and its mode. */
export interface BackupEntry {
  path: string;
  mode: number;
  data: Buffer;
}

/** What the archive says about itself (inside the encryption). */
export interface BackupInfo {
  createdAt: string;
  podgateVersion: string;
  schemaVersion: number;
  certificates: number;
  revoked: number;
  crlNumber: number | null;
}

interface ManifestFile {
  path: string;
  mode: number;
  size: number;
  sha256: string;
}

interface Manifest {
  info: BackupInfo;
  files: ManifestFile[];
}

export interface DecodedBackup {
  header: BackupHeader;
  info: BackupInfo;
  entries: BackupEntry[];
}

/** Checks a passphrase read from a file; the rule is named in the error. */
export function checkPassphrase(passphrase: string, field: string): string {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new BadRequest(`${field} must hold at least ${MIN_PASSPHRASE_LENGTH} characters`, field);
  }
  return passphrase;
}

/**
 * Paths stay inside the data dir: relative, forward slashes, no empty, "." or ".." segments, and
 * only characters podgate itself uses in file names.
 */
export function safeEntryPath(path: string): boolean {
  if (!/^[A-Za-z0-9._/-]{1,255}$/.test(path)) return false;
  return path.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

function deriveKey(passphrase: string, kdf: BackupHeader['kdf']): Buffer {
  return scryptSync(passphrase, Buffer.from(kdf.salt, 'base64'), 32, {
    N: kdf.N,
    r: kdf.r,
    p: kdf.p,
    maxmem: 256 * kdf.N * kdf.r + 1024 * 1024,
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Packs, compresses and encrypts `entries`; returns the whole backup file. */
export function encodeBackup(entries: readonly BackupEntry[], info: BackupInfo, passphrase: string): Buffer {
  for (const e of entries) {
    if (!safeEntryPath(e.path)) throw new Error(`backup: unsafe entry path ${JSON.stringify(e.path)}`);
  }
  const manifest: Manifest = {
    info,
    files: entries.map((e) => ({ path: e.path, mode: e.mode, size: e.data.length, sha256: sha256(e.data) })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(manifestBytes.length);
  const plaintext = gzipSync(Buffer.concat([length, manifestBytes, ...entries.map((e) => e.data)]), {
    level: 6,
  });

  const header: BackupHeader = {
    cipher: 'aes-256-gcm',
    kdf: { name: 'scrypt', salt: randomBytes(16).toString('base64'), ...SCRYPT },
    iv: randomBytes(12).toString('base64'),
    createdAt: info.createdAt,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(PREFIX);
  BACKUP_MAGIC.copy(prefix, 0);
  prefix.writeUInt8(BACKUP_FORMAT_VERSION, BACKUP_MAGIC.length);
  prefix.writeUInt32BE(headerBytes.length, BACKUP_MAGIC.length + 1);
  const aad = Buffer.concat([prefix, headerBytes]);
  const cipher = createCipheriv(
    'aes-256-gcm',
    deriveKey(passphrase, header.kdf),
    Buffer.from(header.iv, 'base64'),
  );
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([aad, body, cipher.getAuthTag()]);
}

const damaged = (what: string) => new BadRequest(`the backup file is damaged: ${what}`, 'backup');

function parseHeader(text: string): BackupHeader {
  let h: BackupHeader;
  try {
    h = JSON.parse(text) as BackupHeader;
  } catch {
    throw damaged('its header is not readable');
  }
  const k = h?.kdf;
  const ok =
    h?.cipher === 'aes-256-gcm' &&
    k?.name === 'scrypt' &&
    typeof k.salt === 'string' &&
    Number.isInteger(k.N) &&
    k.N >= 1024 &&
    k.N <= MAX_SCRYPT_N &&
    (k.N & (k.N - 1)) === 0 &&
    Number.isInteger(k.r) &&
    k.r >= 1 &&
    k.r <= 32 &&
    Number.isInteger(k.p) &&
    k.p >= 1 &&
    k.p <= 4 &&
    typeof h.iv === 'string' &&
    Buffer.from(h.iv, 'base64').length === 12 &&
    typeof h.createdAt === 'string';
  if (!ok) throw damaged('its header names an unknown cipher or out-of-range key derivation');
  return h;
}

/** Reads only the unencrypted prefix: tells a backup (and its version) from any other file. */
export function readBackupHeader(file: Buffer): { version: number; header: BackupHeader; headerEnd: number } {
  if (file.length < PREFIX || !file.subarray(0, BACKUP_MAGIC.length).equals(BACKUP_MAGIC)) {
    throw new BadRequest('not a podgate backup file (no PGBACKUP header)', 'backup');
  }
  const version = file.readUInt8(BACKUP_MAGIC.length);
  if (version !== BACKUP_FORMAT_VERSION) {
    throw new BadRequest(
      `backup format version ${version} is not supported (this podgate reads version ${BACKUP_FORMAT_VERSION})`,
      'backup',
    );
  }
  const headerLength = file.readUInt32BE(BACKUP_MAGIC.length + 1);
  const headerEnd = PREFIX + headerLength;
  if (headerLength > MAX_HEADER_BYTES || file.length < headerEnd + TAG_BYTES)
    throw damaged('it is truncated');
  return { version, header: parseHeader(file.subarray(PREFIX, headerEnd).toString('utf8')), headerEnd };
}

/**
 * Authenticates, decrypts and unpacks a backup file, checking every file's size and SHA-256.
 * A wrong passphrase and any changed byte give the same 400 error; nothing is returned half-checked.
 */
export function decodeBackup(file: Buffer, passphrase: string): DecodedBackup {
  const { header, headerEnd } = readBackupHeader(file);
  const decipher = createDecipheriv(
    'aes-256-gcm',
    deriveKey(passphrase, header.kdf),
    Buffer.from(header.iv, 'base64'),
  );
  decipher.setAAD(file.subarray(0, headerEnd));
  decipher.setAuthTag(file.subarray(file.length - TAG_BYTES));
  let compressed: Buffer;
  try {
    compressed = Buffer.concat([
      decipher.update(file.subarray(headerEnd, file.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw new BadRequest(WRONG_BACKUP_PASSPHRASE, 'passphrase');
  }
  let plain: Buffer;
  try {
    plain = gunzipSync(compressed, { maxOutputLength: MAX_PLAINTEXT_BYTES });
  } catch {
    throw damaged('its contents do not decompress');
  }
  if (plain.length < 4) throw damaged('no manifest');
  const manifestLength = plain.readUInt32BE(0);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(plain.subarray(4, 4 + manifestLength).toString('utf8')) as Manifest;
  } catch {
    throw damaged('its manifest is not readable');
  }
  if (!Array.isArray(manifest?.files) || typeof manifest.info !== 'object') throw damaged('no file list');
  let offset = 4 + manifestLength;
  const seen = new Set<string>();
  const entries = manifest.files.map((f): BackupEntry => {
    if (typeof f.path !== 'string' || !safeEntryPath(f.path) || seen.has(f.path)) {
      throw damaged(`unsafe or repeated file name ${JSON.stringify(f.path)}`);
    }
    seen.add(f.path);
    if (!Number.isInteger(f.size) || f.size < 0 || offset + f.size > plain.length)
      throw damaged(`${f.path} is cut short`);
    const data = plain.subarray(offset, offset + f.size);
    offset += f.size;
    if (sha256(data) !== f.sha256) throw damaged(`${f.path} does not match its checksum`);
    const mode = Number.isInteger(f.mode) ? f.mode & 0o777 : 0o600;
    return { path: f.path, mode, data };
  });
  if (offset !== plain.length) throw damaged('unexpected bytes after the last file');
  return { header, info: manifest.info, entries };
}
