/**
 * podgate's certificate authority: pure code (no files, no network). Keys are generated and every
 * signature is made by Node's native crypto; node-forge lays out X.509 and CRL structures.
 */
export type {
  CaKeyType,
  ClientKeyType,
  CertKind,
  RevocationReason,
  CaMaterial,
  IssueRequest,
  IssuedCertificate,
  RevokedEntry,
  CrlInfo,
  KeySecret,
} from './types.js';
export { createCa, CertificateAuthority, type CaOptions } from './ca.js';
export { crlIssuers, verifyCrl } from './crl-verify.js';
export { REASON_CODES } from './crl-build.js';
export { parseCsr } from './csr.js';
export {
  encryptPrivateKey,
  decryptPrivateKey,
  encryptSecret,
  decryptSecret,
  WRONG_SECRET_MESSAGE,
} from './key-envelope.js';
export { certificateInfo } from './cert-info.js';
export { publicKeyMatches, CLIENT_KEY_TYPES, CA_KEY_TYPES } from './keys.js';
