import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { AppError } from '../lib/errors.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { decryptSecret, encryptSecret } from '../pki/index.js';
import { resolveKeySecret } from './key-secret.js';

/** The data key for refresh tokens, itself sealed with the CA key's secret (passphrase or key file). */
export const TOKEN_KEY_FILE = 'oidc-token.key';

/**
 * Encrypts refresh tokens at rest. A random 32-byte data key seals every token (AES-256-GCM, the same
 * envelope as the CA key); that data key is sealed with the CA key's secret and kept in the data dir.
 * So a copy of the database alone gives no usable token, and scrypt runs once per process, not once
 * per token.
 */
export class TokenCipher {
  private constructor(private readonly key: Buffer) {}

  static open(config: Config, dataDir: string): TokenCipher {
    const secret = resolveKeySecret(config, dataDir, false);
    const file = join(dataDir, TOKEN_KEY_FILE);
    if (!existsSync(file)) {
      // First writer wins across processes (serve and `user sync` may start together): link fails if present.
      const tmp = `${file}.${randomBytes(6).toString('hex')}.new`;
      writeFileAtomic(tmp, encryptSecret(randomBytes(32), secret), 0o600);
      try {
        linkSync(tmp, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        rmSync(tmp, { force: true });
      }
    }
    let key: Buffer;
    try {
      key = decryptSecret(readFileSync(file, 'utf8'), secret);
    } catch (err) {
      throw new AppError(500, 'bad_token_key', `${file} cannot be decrypted with the CA key's secret`, {
        cause: err,
      });
    }
    if (key.length !== 32) throw new AppError(500, 'bad_token_key', `${file} does not hold a 32-byte key`);
    return new TokenCipher(key);
  }

  seal(token: string): string {
    return encryptSecret(Buffer.from(token, 'utf8'), { kek: this.key });
  }

  open(envelope: string): string {
    return decryptSecret(envelope, { kek: this.key }).toString('utf8');
  }
}
