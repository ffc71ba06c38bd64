import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BadRequest } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import type { AppContext } from '../../services/context.js';
import type { CliEnv } from '../env.js';

/**
 * Where `cert issue` and `cert renew` write a profile. Checked before anything is issued, so a bad --out
 * never leaves a certificate behind: the directory must exist and the file must not ("-" is stdout).
 */
export function checkOutPath(out: string): string {
  if (out === '-') return out;
  const path = resolve(out);
  const dir = dirname(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new BadRequest(`--out: directory ${dir} does not exist`, 'out');
  if (existsSync(path)) throw new BadRequest(`--out: ${path} already exists; choose another file`, 'out');
  return path;
}

/** The PKCS#10 request of --csr, read before anything is issued. */
export function readCsrOption(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new BadRequest(`--csr ${file} cannot be read`, 'csr');
  }
}

/**
 * Writes the profile (mode 0600) or prints it for "-". The profile holds the only copy of the key: when it
 * cannot be written, the certificate nobody can use is revoked before the error is reported.
 * Returns true when a file was written.
 */
export async function deliverProfile(
  ctx: AppContext,
  env: CliEnv,
  out: string,
  profile: string,
  serial: string,
): Promise<boolean> {
  if (out === '-') {
    env.out(profile);
    return false;
  }
  try {
    writeFileAtomic(out, profile, 0o600);
  } catch (err) {
    await ctx.revocation.revoke({ actor: 'cli', serialOrName: serial, reason: 'cessationOfOperation' });
    throw new BadRequest(`--out: cannot write ${out}: ${(err as Error).message}`, 'out');
  }
  return true;
}
