import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { AppError } from '../lib/errors.js';
import type { User } from '../store/types.js';
import type { AppContext } from './context.js';

export const FIRST_ADMIN = 'admin';

/**
 * Creates the first admin (`admin`) when there is no user at all. The password comes from the file named
 * by PODGATE_ADMIN_PASSWORD_FILE, or is generated and returned so the caller prints it exactly once.
 * Returns undefined when users already exist.
 */
export async function ensureFirstAdmin(
  ctx: AppContext,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ user: User; generatedPassword?: string } | undefined> {
  if (ctx.store.listUsers().length > 0) return undefined;
  const file = env.PODGATE_ADMIN_PASSWORD_FILE;
  let password: string;
  let generated = false;
  if (file) {
    try {
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new AppError(400, 'bad_password_file', `PODGATE_ADMIN_PASSWORD_FILE ${file} cannot be read`, {
        cause: err,
        field: 'PODGATE_ADMIN_PASSWORD_FILE',
      });
    }
  } else {
    password = randomBytes(18).toString('base64url');
    generated = true;
  }
  const user = await ctx.users.create({ actor: 'system', name: FIRST_ADMIN, role: 'admin', password });
  return generated ? { user, generatedPassword: password } : { user };
}
