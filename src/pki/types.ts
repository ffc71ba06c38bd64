/** Public types of podgate's certificate authority. Structurally identical to the store's unions. */

export type CaKeyType = 'rsa-3072' | 'ec-p384';
export type ClientKeyType = 'ec-p256' | 'rsa-2048' | 'rsa-3072';
import type { CertKind, RevocationReason } from '../lib/cert-vocabulary.js';
export type { CertKind, RevocationReason };

/** A CA certificate and its key. `keyPem` is plaintext PKCS#8: keep it in memory only. */
export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export interface IssueRequest {
  kind: CertKind;
  /** Validated with the project's name rule (`validateName('commonName', ...)`). */
  commonName: string;
  /** Validity in days from now; capped at the CA's own notAfter. */
  days: number;
  /** Key to generate (default ec-p256). Ignored when `publicKeyPem` is given. */
  keyType?: ClientKeyType;
  /** Certify this key (e.g. from `parseCsr`) instead of generating one; no private key is returned. */
  publicKeyPem?: string;
  now?: Date;
}

export interface IssuedCertificate {
  /** Upper-case hex, even length, exactly as `openssl x509 -noout -serial` prints it. */
  serial: string;
  certPem: string;
  /** PKCS#8 PEM; only when the key was generated here. Never stored by podgate. */
  keyPem?: string;
  notBefore: Date;
  notAfter: Date;
  commonName: string;
  /** "ec-p256", "rsa-2048", "rsa-3072" (or "rsa-4096", "ec-p384" for keys from a CSR). */
  keyType: string;
}

export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlInfo {
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  revokedSerials: string[];
}

/** What a private key is encrypted with at rest: a passphrase (scrypt) or a raw 32-byte key-encryption key. */
export type KeySecret = { passphrase: string } | { kek: Buffer };
