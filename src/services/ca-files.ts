import { existsSync, readFileSync, mkdirSync, renameSync } from 'node:fs';
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

/**
 * Completes a CA switch from whatever point a crash stopped it (each step is one rename, and each is
 * done only when its source exists and its target does not): current → previous, then next → current.
 */
export function finishRotation(dataDir: string): void {
  const f = (name: string) => join(dataDir, name);
  for (const [cur, prev, next] of [
    [CA_KEY_FILE, PREVIOUS_CA_KEY_FILE, NEXT_CA_KEY_FILE],
    [CA_CERT_FILE, PREVIOUS_CA_CERT_FILE, NEXT_CA_CERT_FILE],
  ] as const) {
    if (!existsSync(f(next))) continue;
    if (existsSync(f(cur)) && !existsSync(f(prev))) renameSync(f(cur), f(prev));
    if (!existsSync(f(cur))) renameSync(f(next), f(cur));
  }
}

/** Reads the current CA and, during an overlap, the previous one. Throws when a file is unreadable. */
export function readCaFiles(
  dataDir: string,
  secret: KeySecret,
): { ca: CertificateAuthority; previous?: CertificateAuthority } {
  const f = (name: string) => join(dataDir, name);
  const load = (cert: string, key: string) =>
    CertificateAuthority.load({
      certPem: readFileSync(f(cert), 'utf8'),
      keyPem: decryptPrivateKey(readFileSync(f(key), 'utf8'), secret),
    });
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
 * Loads the CA from the data dir, creating it (RSA-3072 or EC P-384, key encrypted at rest) on first use.
 * A wrong passphrase fails closed before anything else happens.
 */
export async function loadOrCreateCa(config: Config, dataDir: string): Promise<LoadedCa> {
  if (existsSync(join(dataDir, NEXT_CA_KEY_FILE)) && existsSync(join(dataDir, NEXT_CA_CERT_FILE)))
    finishRotation(dataDir);
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
