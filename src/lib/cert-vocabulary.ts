/**
 * Words shared by the CA, the store and the faces: one list each, so a new reason or kind is added once.
 */

/** RFC 5280 CRLReason names podgate offers (7 is unused; removeFromCRL and aACompromise are not offered). */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'caCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export const CERT_KINDS = ['client', 'server', 'gateway'] as const;
export type CertKind = (typeof CERT_KINDS)[number];
