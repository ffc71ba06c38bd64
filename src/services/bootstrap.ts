import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { AppError } from '../lib/errors.js';
import type { AccessMode, AccessRule } from '../access/types.js';
import { LOCK } from '../store/locks.js';
import type { User } from '../store/types.js';
import type { AppContext } from './context.js';

export const FIRST_ADMIN = 'admin';

/**
 * Creates the first admin (`admin`) when there is no user at all. The password comes from the file named
 * by PODGATE_ADMIN_PASSWORD_FILE, or is generated and returned so the caller prints it exactly once;
 * with `requirePasswordFile` (in a pod) a missing file is an error instead. Returns undefined when
 * users already exist, also when another replica created the admin while this one was starting. A new install also gets `access.mode` = enforce and the admins rule.
 */
export async function ensureFirstAdmin(
  ctx: AppContext,
  env: NodeJS.ProcessEnv = process.env,
  opts: { requirePasswordFile?: boolean } = {},
): Promise<
  { user: User; generatedPassword?: string; access: { mode?: AccessMode; rule?: AccessRule } } | undefined
> {
  if ((await ctx.store.listUsers()).length > 0) return undefined;
  const file = env.PODGATE_ADMIN_PASSWORD_FILE;
  if (!file && opts.requirePasswordFile) {
    // In a pod, stdout is the pod log: a generated password printed there is readable by anyone who
    // can read logs, and kept by log collectors. Refuse instead, and say how to pass one.
    throw new AppError(
      400,
      'admin_password_file_required',
      'PODGATE_ADMIN_PASSWORD_FILE is required to create the first admin in a pod (a generated password ' +
        'would land in the pod log): put the password in a Secret, mount it, and point ' +
        'PODGATE_ADMIN_PASSWORD_FILE at the file (k8s/deployment.yaml reads Secret podgate-admin, key password)',
      { field: 'PODGATE_ADMIN_PASSWORD_FILE' },
    );
  }
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
  // Two replicas starting at once on an empty database: the lock makes the check and the creation one
  // step, so the second waits, finds the first's admin and creates none (SQLite's write transaction
  // serialises anyway).
  const made = await ctx.store.transaction(async (tx) => {
    await tx.lock(LOCK.firstAdmin);
    if ((await tx.listUsers()).length > 0) return undefined;
    const user = await ctx.users.create({ actor: 'system', name: FIRST_ADMIN, role: 'admin', password }, tx);
    // A new install enforces access rules; the one rule written lets admins reach everything.
    const access = await ctx.access.ensureNewInstallDefaults('system', tx);
    return { user, access };
  });
  if (!made) return undefined;
  const { user, access } = made;
  await ctx.access.changed();
  return generated ? { user, generatedPassword: password, access } : { user, access };
}
