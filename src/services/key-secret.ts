import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import type { KeySecret } from '../pki/index.js';
import type { Config } from '../config/schema.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';

const log = logger.child({ module: 'key-secret' });
export const KEK_FILE = 'ca-key.kek';

/**
 * The secret that protects the CA key (and the server key) at rest: scrypt of the passphrase file
 * when `ca.passphraseFile` is set, otherwise a random 32-byte key file in the data dir (mode 0600).
 * The key-file mode is announced loudly: anyone who can read the data dir can then use the CA.
 */
export function resolveKeySecret(config: Config, dataDir: string, create: boolean): KeySecret {
  if (config.ca.passphraseFile) {
    let passphrase: string;
    try {
      passphrase = readFileSync(config.ca.passphraseFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new AppError(
        400,
        'bad_passphrase_file',
        `ca.passphraseFile ${config.ca.passphraseFile} cannot be read`,
        {
          cause: err,
          field: 'ca.passphraseFile',
        },
      );
    }
    if (passphrase.length < 8) {
      throw new AppError(400, 'bad_passphrase_file', 'ca.passphraseFile must hold at least 8 characters', {
        field: 'ca.passphraseFile',
      });
    }
    return { passphrase };
  }
  const file = join(dataDir, KEK_FILE);
  if (existsSync(file)) {
    const kek = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (kek.length !== 32) throw new AppError(500, 'bad_kek', `${file} does not hold a 32-byte key`);
    return { kek };
  }
  if (!create) throw new AppError(500, 'missing_kek', `${file} is missing: the CA key cannot be decrypted`);
  const kek = randomBytes(32);
  writeFileAtomic(file, kek.toString('base64') + '\n', 0o600);
  log.warn(
    { file },
    'WARNING: no ca.passphraseFile configured; the CA key is encrypted with a generated key file stored next to it. ' +
      'Anyone who can read the data dir can use the CA. Set ca.passphraseFile for real deployments.',
  );
  return { kek };
}
