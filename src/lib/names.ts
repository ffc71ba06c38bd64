import { BadRequest } from './errors.js';

/**
 * The one rule for common names, user names and device names. Names end up in file names, OpenVPN
 * config lines, Kubernetes labels and the CN of a certificate, so they are a lower-case slug: no path
 * separator, no space, no newline, no colon (openvpn's management `kill` breaks on it).
 */
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
