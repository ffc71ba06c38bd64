import { BadRequest } from './errors.js';

/** The one rule for common names, user names and device names (DESIGN.md, security defaults). */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const NAME_RULE =
  'must match ^[a-z0-9][a-z0-9._-]{0,63}$ (lower case letters, digits, ".", "_", "-"; 1-64 characters; not "." or "..")';

/** Returns the name when it is valid; otherwise throws a 400 that names the field and the rule. */
export function validateName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value) || value === '.' || value === '..') {
    throw new BadRequest(`${field} ${NAME_RULE}`, field);
  }
  return value;
}
