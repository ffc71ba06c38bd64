import type { OidcConfig } from '../config/schema.js';
import { AppError } from '../lib/errors.js';
import { NAME_PATTERN } from '../lib/names.js';

/** What podgate reads from an ID token: who (subject), a name to show, and the groups. */
export interface OidcProfile {
  subject: string;
  /** Already made valid under the name rule (not yet unique). */
  name: string;
  groups: string[];
}

/** The provider's token lacks what the configured groups rules need: nobody can fix it but the admin. */
export class GroupsClaimProblem extends AppError {
  constructor(message: string) {
    super(403, 'oidc_groups_claim', message);
  }
}

/**
 * Turns any claim value into a valid podgate name: lower case, characters outside [a-z0-9._-] become
 * "-", leading punctuation dropped, at most 64 characters. Empty results become "user".
 */
export function toValidName(raw: string): string {
  let s = raw
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64)
    .replace(/[.-]+$/, '');
  if (s === '' || s === '.' || s === '..') s = 'user';
  return NAME_PATTERN.test(s) ? s : 'user';
}

/** `base`, else `base-2`, `base-3`, … (shortened to stay within 64 characters) for the first free one. */
export async function uniqueName(
  base: string,
  taken: (name: string) => Promise<boolean>,
): Promise<string> {
  if (!(await taken(base))) return base;
  for (let i = 2; i < 10_000; i++) {
    const suffix = `-${i}`;
    const candidate = base.slice(0, 64 - suffix.length) + suffix;
    if (!(await taken(candidate))) return candidate;
  }
  throw new AppError(409, 'name_exhausted', `no free user name derived from "${base}"`);
}

/**
 * The groups claim. When no group rule is configured, a missing claim is simply "no groups". When
 * rules are configured, a missing or malformed claim refuses the sign-in (never guess), with the fix.
 * `missing: 'no-groups'` (the leaver check) reads a missing claim as "in no group": providers such as
 * Okta leave the claim out when none of a user's groups matches its filter, which is what a leaver
 * looks like. A malformed claim is refused either way.
 */
export function readGroups(
  claims: Record<string, unknown>,
  o: OidcConfig,
  { missing = 'refuse' }: { missing?: 'refuse' | 'no-groups' } = {},
): string[] {
  const value = claims[o.groupsClaim];
  const rulesUsed = o.allowedGroups.length > 0 || o.adminGroups.length > 0;
  if (value === undefined || value === null) {
    if (!rulesUsed || missing === 'no-groups') return [];
    throw new GroupsClaimProblem(
      `the provider sent no "${o.groupsClaim}" claim (neither in the ID token nor at UserInfo), so podgate ` +
        `cannot check your groups: ask your admin to make the provider send it (often the "groups" scope ` +
        `or a group mapper) or to set auth.oidc.groupsClaim`,
    );
  }
  if (!Array.isArray(value) || !value.every((g) => typeof g === 'string')) {
    throw new GroupsClaimProblem(
      `the provider's "${o.groupsClaim}" claim is not a list of group names (got ${Array.isArray(value) ? 'a list with non-text items' : typeof value}): ` +
        'ask your admin to fix the claim mapping at the provider',
    );
  }
  return [...new Set(value as string[])].sort();
}

/** Reads subject, name and groups; a token without a usable name or subject is refused with the reason. */
export function readProfile(claims: Record<string, unknown>, o: OidcConfig): OidcProfile {
  const subject = claims.sub;
  if (typeof subject !== 'string' || subject === '')
    throw new AppError(
      400,
      'oidc_subject',
      'the ID token has no subject ("sub"); the provider is misconfigured',
    );
  const preferred = claims[o.usernameClaim];
  const email = claims.email;
  let raw: string | undefined;
  if (typeof preferred === 'string' && preferred.trim() !== '') raw = preferred.trim();
  else if (typeof email === 'string' && email.includes('@')) raw = email.slice(0, email.indexOf('@'));
  if (raw === undefined)
    throw new AppError(
      400,
      'oidc_username',
      `the provider sent neither a "${o.usernameClaim}" nor an "email" claim (in the ID token or at UserInfo) to name you by: ` +
        'ask your admin to add the "profile" or "email" scope (auth.oidc.scopes) or set auth.oidc.usernameClaim',
    );
  return { subject, name: toValidName(raw), groups: readGroups(claims, o) };
}

/** Allowed = in an allowed group (or no allowed groups configured) or in an admin group. */
export function decideAccess(
  groups: readonly string[],
  o: OidcConfig,
): { allowed: boolean; admin: boolean | undefined } {
  const has = (list: readonly string[]): boolean => list.some((g) => groups.includes(g));
  const admin = o.adminGroups.length > 0 ? has(o.adminGroups) : undefined;
  const allowed = o.allowedGroups.length === 0 || has(o.allowedGroups) || admin === true;
  return { allowed, admin };
}

/** The message for someone outside every allowed group. */
export function notAllowedMessage(o: OidcConfig): string {
  const list = o.allowedGroups.map((g) => `"${g}"`).join(', ');
  return `you are not in a group allowed to use podgate: ask your admin to add you to ${o.allowedGroups.length > 1 ? 'one of ' : ''}${list}`;
}
