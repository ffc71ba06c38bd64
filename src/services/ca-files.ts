import { existsSync, readFileSync, mkdirSync } from 'node:fs';
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

export interface LoadedCa {
  ca: CertificateAuthority;
  secret: KeySecret;
  created: boolean;
}

/**
 * Loads the CA from the data dir, creating it (RSA-3072 or EC P-384, key encrypted at rest) on first use.
 * A wrong passphrase fails closed before anything else happens.
 */
export async function loadOrCreateCa(config: Config, dataDir: string): Promise<LoadedCa> {
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
    const keyPem = decryptPrivateKey(readFileSync(keyFile, 'utf8'), secret);
    const ca = CertificateAuthority.load({ certPem: readFileSync(certFile, 'utf8'), keyPem });
    return { ca, secret, created: false };
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
