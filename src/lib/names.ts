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

/**
 * Device names in self-service certificates, named `<user>.<device>`: no ".", so the last "." of a
 * common name always separates the owner from the device and no two (user, device) pairs can give the
 * same name ("john" + "smith.laptop" vs "john.smith" + "laptop"). Names issued before this rule keep
 * working; the store refuses to give a common name to a second owner (see certs-repo insertCert).
 */
export const DEVICE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const DEVICE_NAME_RULE =
  'must match ^[a-z0-9][a-z0-9_-]{0,63}$ (lower case letters, digits, "_", "-"; no "."; 1-64 characters)';

export function validateDeviceName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !DEVICE_NAME_PATTERN.test(value)) {
    throw new BadRequest(`${field} ${DEVICE_NAME_RULE}`, field);
  }
  return value;
}

/**
 * The certificate common name of office gateway `name` (`gw-<name>`). Gateway provisioning issues it,
 * and access rules recognise a gateway's device by it while the gateway record does not name its
 * certificate yet (during a first provision, or after a re-provision replaced the certificate).
 */
export function gatewayCommonName(name: string): string {
  return `gw-${name}`;
}
