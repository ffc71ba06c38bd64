import { existsSync, readFileSync, readdirSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import {
  CertificateAuthority,
  createCa,
  decryptPrivateKey,
  encryptPrivateKey,
  type KeySecret,
} from '../pki/index.js';
import type { Config } from '../config/schema.js';
import { withFileLock, withFileLockAsync } from '../store/file-lock.js';
import { resolveKeySecret } from './key-secret.js';

const log = logger.child({ module: 'ca' });
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key.enc';
/** During a CA rotation's overlap: the outgoing CA, still trusted by the server until `ca retire-old`. */
export const PREVIOUS_CA_CERT_FILE = 'ca-previous.crt';
export const PREVIOUS_CA_KEY_FILE = 'ca-previous.key.enc';
/** Written by `ca rotate` before the switch; moved into place by finishRotation. */
export const NEXT_CA_CERT_FILE = 'ca-next.crt';
export const NEXT_CA_KEY_FILE = 'ca-next.key.enc';

/** The lock every change of the CA files takes (`ca rotate`, `ca retire-old`, resuming them, backup). */
export const CA_LOCK_FILE = '.ca.lock';
/**
 * The CA files every replica needs, kept in the database on PostgreSQL (docs/postgres.md): the current,
 * previous, next and retired certificates and their encrypted keys; never the key's secret (ca-key.kek).
 */
export const SHARED_CA_FILES = /^ca(-previous|-next|-retired-[0-9a-f]+)?\.(crt|key\.enc)$/;

/**
 * Test hook: called with the name of each point of a CA change just after it is reached (a crash test
 * stops the process there). Production callers pass nothing.
 */
export type CaChangeProbe = (point: string) => void;

/**
 * Runs `fn` holding the data dir's CA lock, a file lock shared by every process on the machine (the
 * kernel drops it when the holder dies): two `ca rotate` runs cannot interleave their writes and pair
 * one's key with the other's certificate, and a backup cannot copy the files half-way through a change.
 */
export function withCaLock<R>(dataDir: string, fn: () => R): R {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return withFileLock(join(dataDir, CA_LOCK_FILE), fn);
}

/** withCaLock for an asynchronous `fn`. */
export function withCaLockAsync<R>(dataDir: string, fn: () => Promise<R>): Promise<R> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return withFileLockAsync(join(dataDir, CA_LOCK_FILE), fn);
}

/** `ca-retired-<id>.crt` files whose key file is not there yet: `ca retire-old` stopped between its renames. */
function retiredWithoutKey(dataDir: string): string[] {
  return readdirSync(dataDir)
    .filter((n) => /^ca-retired-[0-9a-f]+\.crt$/.test(n))
    .filter((n) => !existsSync(join(dataDir, n.replace(/\.crt$/, '.key.enc'))));
}

/** True when a CA change was cut short and finishCaChange has something to do. */
export function caChangePending(dataDir: string): boolean {
  const has = (name: string) => existsSync(join(dataDir, name));
  if (has(NEXT_CA_KEY_FILE) || has(NEXT_CA_CERT_FILE)) return true;
  return has(PREVIOUS_CA_KEY_FILE) && !has(PREVIOUS_CA_CERT_FILE) && retiredWithoutKey(dataDir).length > 0;
}

/**
 * Completes a CA change from whatever point a crash stopped it; the caller holds the CA lock. Each
 * step is one rename, done only when its source exists and its target does not.
 * - `ca rotate` (key pair first, then certificate pair): current → previous, next → current. A
 *   `ca-next.key.enc` without its `ca-next.crt` before any rename is a rotation that died writing the
 *   certificate: the lone key is removed and the old CA stays. A next pair that does not load together
 *   is refused before anything is renamed.
 * - `ca retire-old` (certificate first, then key): a `ca-previous.key.enc` left beside a retired
 *   certificate without its key is moved next to it.
 * With `secret`, the CA files must load (key matches certificate) when it returns, or it throws.
 */
export function finishCaChange(dataDir: string, secret?: KeySecret, probe?: CaChangeProbe): void {
  const f = (name: string) => join(dataDir, name);
  const has = (name: string) => existsSync(f(name));
  if (has(NEXT_CA_KEY_FILE) && !has(NEXT_CA_CERT_FILE) && has(CA_KEY_FILE) && !has(PREVIOUS_CA_KEY_FILE)) {
    log.warn({ dataDir }, 'a CA rotation stopped before its certificate was written; the old CA stays');
    rmSync(f(NEXT_CA_KEY_FILE));
  }
  if (secret && has(NEXT_CA_KEY_FILE) && has(NEXT_CA_CERT_FILE)) {
    loadPair(dataDir, NEXT_CA_CERT_FILE, NEXT_CA_KEY_FILE, secret); // throws: nothing renamed yet
  }
  for (const [cur, prev, next, label] of [
    [CA_KEY_FILE, PREVIOUS_CA_KEY_FILE, NEXT_CA_KEY_FILE, 'key'],
    [CA_CERT_FILE, PREVIOUS_CA_CERT_FILE, NEXT_CA_CERT_FILE, 'cert'],
  ] as const) {
    if (!has(next)) continue;
    if (has(cur) && !has(prev)) {
      renameSync(f(cur), f(prev));
      probe?.(`rotate:${label}-to-previous`);
    }
    if (!has(cur)) {
      renameSync(f(next), f(cur));
      probe?.(`rotate:${label}-to-current`);
    }
  }
  if (
    !has(NEXT_CA_KEY_FILE) &&
    !has(NEXT_CA_CERT_FILE) &&
    has(PREVIOUS_CA_KEY_FILE) &&
    !has(PREVIOUS_CA_CERT_FILE)
  ) {
    const [retired] = retiredWithoutKey(dataDir);
    if (retired) renameSync(f(PREVIOUS_CA_KEY_FILE), f(retired.replace(/\.crt$/, '.key.enc')));
  }
  if (secret) readCaFiles(dataDir, secret);
}

function loadPair(dataDir: string, cert: string, key: string, secret: KeySecret): CertificateAuthority {
  const certPem = readFileSync(join(dataDir, cert), 'utf8');
  const keyPem = decryptPrivateKey(readFileSync(join(dataDir, key), 'utf8'), secret);
  try {
    return CertificateAuthority.load({ certPem, keyPem });
  } catch (err) {
    if (err instanceof AppError && err.code === 'ca_key_mismatch') {
      throw new AppError(500, 'ca_key_mismatch', `${key} does not match ${cert} in ${dataDir}`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** Reads the current CA and, during an overlap, the previous one. Throws when a file is unreadable. */
export function readCaFiles(
  dataDir: string,
  secret: KeySecret,
): { ca: CertificateAuthority; previous?: CertificateAuthority } {
  const f = (name: string) => join(dataDir, name);
  const load = (cert: string, key: string) => loadPair(dataDir, cert, key, secret);
  const ca = load(CA_CERT_FILE, CA_KEY_FILE);
  // Without ca-previous.crt the old CA is not in force, even if its key file remains (retire-old moves
  // the certificate first).
  const previous = existsSync(f(PREVIOUS_CA_CERT_FILE))
    ? load(PREVIOUS_CA_CERT_FILE, PREVIOUS_CA_KEY_FILE)
    : undefined;
  return { ca, ...(previous ? { previous } : {}) };
}

export interface LoadedCa {
  ca: CertificateAuthority;
  /** The outgoing CA while a rotation's overlap lasts. */
  previous?: CertificateAuthority;
  secret: KeySecret;
  created: boolean;
}

/**
 * The secret of a CA that is complete on disk (both files, no change pending), without reading the CA
 * itself; undefined otherwise (the caller then goes through loadOrCreateCa). Read-only commands use it
 * to read the CA files only when something signs.
 */
export function existingCaSecret(config: Config, dataDir: string): KeySecret | undefined {
  if (caChangePending(dataDir)) return undefined;
  if (!existsSync(join(dataDir, CA_CERT_FILE)) || !existsSync(join(dataDir, CA_KEY_FILE))) return undefined;
  return resolveKeySecret(config, dataDir, false);
}

/**
 * Loads the CA from the data dir, creating it (RSA-3072 or EC P-384, key encrypted at rest) on first use.
 * A wrong passphrase fails closed before anything else happens.
 */
export async function loadOrCreateCa(config: Config, dataDir: string): Promise<LoadedCa> {
  // A `ca rotate` or `ca retire-old` killed between its renames is finished first (under the lock, so
  // a rotation still running in another process is waited for, not taken half-way).
  if (caChangePending(dataDir)) {
    const secret = resolveKeySecret(config, dataDir, false);
    withCaLock(dataDir, () => finishCaChange(dataDir, secret));
  }
  const certFile = join(dataDir, CA_CERT_FILE);
  const keyFile = join(dataDir, CA_KEY_FILE);
  const haveCert = existsSync(certFile);
  const haveKey = existsSync(keyFile);
  if (haveCert !== haveKey) {
    throw new AppError(
      500,
      'ca_incomplete',
      `the CA in ${dataDir} is incomplete: ${haveCert ? keyFile : certFile} is missing`,
    );
  }
  if (haveCert) {
    const secret = resolveKeySecret(config, dataDir, false);
    return { ...readCaFiles(dataDir, secret), secret, created: false };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = resolveKeySecret(config, dataDir, true);
  const material = await createCa({
    commonName: config.ca.commonName,
    keyType: config.ca.keyType,
    days: config.ca.days,
  });
  // Key first: a crash between the two writes leaves "incomplete", which is reported, never a CA without its key.
  writeFileAtomic(keyFile, encryptPrivateKey(material.keyPem, secret), 0o600);
  writeFileAtomic(certFile, material.certPem, 0o644);
  log.info(
    { commonName: config.ca.commonName, keyType: config.ca.keyType },
    'created the certificate authority',
  );
  return { ca: CertificateAuthority.load(material), secret, created: true };
}
