import type { Config } from '../config/schema.js';
import type { User } from '../store/types.js';

/** Whether a password sign-in may succeed for this user under `auth.local`. */
export function passwordSignInAllowed(config: Config, user: User): boolean {
  const mode = config.auth.local;
  return mode === 'all' || (mode === 'admins-only' && user.role === 'admin');
}

/** Added to the "invalid user name or password" message so people know where to go instead. */
export function passwordSignInHint(config: Config): string {
  const name = config.auth.oidc?.displayName ?? 'single sign-on';
  if (config.auth.local === 'off') return ` (password sign-in is turned off: use "Sign in with ${name}")`;
  if (config.auth.local === 'admins-only')
    return ` (only administrators sign in with a password here: everyone else uses "Sign in with ${name}")`;
  return '';
}
