import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { AppError, BadRequest } from '../lib/errors.js';
import { validateName } from '../lib/names.js';
import { signerFor, type Signer } from './algorithms.js';
import { buildCertificate, type CertTemplate } from './cert-builder.js';
import { readCertificate, type ParsedCertificate } from './cert-info.js';
import { buildCrl } from './crl-build.js';
import { serialHexToIntegerContent, integerContentToSerialHex } from './der.js';
import { CLOCK_SKEW_MS, DAY_MS, wholeSeconds } from './time.js';
import {
  acceptPublicKey,
  CA_KEY_TYPES,
  CLIENT_KEY_TYPES,
  generateKey,
  subjectKeyIdentifier,
} from './keys.js';
import type {
  CaKeyType,
  CaMaterial,
  CertKind,
  IssueRequest,
  IssuedCertificate,
  RevokedEntry,
} from './types.js';

const MAX_DAYS = 36_500;
const KINDS: readonly CertKind[] = ['client', 'server', 'gateway'];

/** Options for {@link CertificateAuthority.load}; tests use `serialBytes` to force edge-case serials. */
export interface CaOptions {
  /** Source of the 16 random serial bytes (default `crypto.randomBytes`). */
  serialBytes?: () => Buffer;
}

/**
 * Creates a self-signed CA: RSA-3072 or EC P-384 key, basicConstraints CA:TRUE (critical), keyUsage
 * keyCertSign + cRLSign (critical), SKI and AKI. `commonName` may contain spaces (e.g. "podgate CA") but no
 * control characters.
 */
export async function createCa(o: {
  commonName: string;
  keyType: CaKeyType;
  days: number;
  now?: Date;
}): Promise<CaMaterial> {
  if (
    typeof o.commonName !== 'string' ||
    !/^[^\p{Cc}]{1,64}$/u.test(o.commonName) ||
    o.commonName.trim() !== o.commonName
  ) {
    throw new BadRequest(
      'ca.commonName must be 1-64 characters without control characters or surrounding spaces',
      'ca.commonName',
    );
  }
  if (!CA_KEY_TYPES.includes(o.keyType))
    throw new BadRequest(`ca.keyType must be one of ${CA_KEY_TYPES.join(', ')}`, 'ca.keyType');
  const days = checkDays(o.days, 'ca.days');
  const now = checkNow(o.now);
  const { spkiDer, keyPem } = await generateKey(o.keyType);
  const ski = subjectKeyIdentifier(spkiDer);
  const cert = buildCertificate(
    {
      serialContent: serialHexToIntegerContent(randomBytes(16).toString('hex')),
      notBefore: wholeSeconds(now.getTime() - CLOCK_SKEW_MS),
      notAfter: wholeSeconds(now.getTime() + days * DAY_MS),
      subjectCommonName: o.commonName,
      spkiDer,
      ski,
      aki: ski,
      isCa: true,
      keyUsage: { keyCertSign: true, cRLSign: true },
    },
    signerFor(createPrivateKey(keyPem)),
  );
  return { certPem: cert.pem, keyPem };
}

/**
 * The CA as a domain object: issues client, server and gateway certificates and signs CRLs. Pure: no
 * storage, no network. Keys are generated and every signature is made by Node's native crypto.
 */
export class CertificateAuthority {
  readonly certPem: string;
  readonly commonName: string;
  /** The CA's own validity end; issued certificates never outlive it. */
  readonly notAfter: Date;
  /** The CA's subject key identifier in hex: which CA issued a certificate (its AKI). */
  readonly keyId: string;

  private constructor(
    private readonly parsed: ParsedCertificate,
    private readonly signer: Signer,
    private readonly serialBytes: () => Buffer,
  ) {
    this.certPem = parsed.pem;
    this.commonName = parsed.commonName;
    this.notAfter = parsed.notAfter;
    this.keyId = parsed.ski.toString('hex');
  }

  /** Loads CA material; throws an AppError when the certificate is unreadable, not a CA, or not the key's. */
  static load(m: CaMaterial, options: CaOptions = {}): CertificateAuthority {
    let parsed: ParsedCertificate;
    let key: KeyObject;
    try {
      parsed = readCertificate(m.certPem);
      key = createPrivateKey(m.keyPem);
    } catch (e) {
      throw new AppError(400, 'ca_invalid', 'the CA certificate or key cannot be read', {
        cause: e,
        field: 'ca',
      });
    }
    const x509 = new X509Certificate(m.certPem);
    if (!x509.ca)
      throw new AppError(
        400,
        'ca_invalid',
        'the CA certificate is not a CA (basicConstraints CA:TRUE missing)',
        { field: 'ca' },
      );
    if (!x509.checkPrivateKey(key)) {
      throw new AppError(400, 'ca_key_mismatch', 'the CA key does not match the CA certificate', {
        field: 'ca',
      });
    }
    return new CertificateAuthority(parsed, signerFor(key), options.serialBytes ?? (() => randomBytes(16)));
  }

  /**
   * Issues a certificate. Client and gateway: EKU clientAuth, keyUsage digitalSignature (+ keyEncipherment
   * for RSA). Server: EKU serverAuth, digitalSignature + keyEncipherment. All: CA:FALSE, SKI, AKI, a 128-bit
   * random serial, notBefore 5 minutes back. Generates an `ec-p256` key unless `keyType` or `publicKeyPem`
   * says otherwise. Bad input throws BadRequest naming the field.
   */
  async issue(r: IssueRequest): Promise<IssuedCertificate> {
    if (!KINDS.includes(r.kind)) throw new BadRequest(`kind must be one of ${KINDS.join(', ')}`, 'kind');
    const commonName = validateName('commonName', r.commonName);
    const days = checkDays(r.days, 'days');
    const now = checkNow(r.now);
    if (now.getTime() >= this.notAfter.getTime()) {
      throw new AppError(
        409,
        'ca_expired',
        `the CA certificate expired on ${this.notAfter.toISOString()}; create a new CA`,
      );
    }
    let key: { spkiDer: Buffer; keyType: string; keyPem?: string };
    if (r.publicKeyPem !== undefined) {
      key = acceptPublicKey(r.publicKeyPem, 'publicKeyPem');
    } else {
      const keyType = r.keyType ?? 'ec-p256';
      if (!CLIENT_KEY_TYPES.includes(keyType))
        throw new BadRequest(`keyType must be one of ${CLIENT_KEY_TYPES.join(', ')}`, 'keyType');
      key = { ...(await generateKey(keyType)), keyType };
    }
    const isRsa = key.keyType.startsWith('rsa-');
    const serialContent = serialHexToIntegerContent(this.nextSerialBytes().toString('hex'));
    const notBefore = wholeSeconds(now.getTime() - CLOCK_SKEW_MS);
    const notAfter = wholeSeconds(Math.min(now.getTime() + days * DAY_MS, this.notAfter.getTime()));
    const template: CertTemplate = {
      serialContent,
      notBefore,
      notAfter,
      subjectCommonName: commonName,
      issuerDer: this.parsed.subjectDer,
      spkiDer: key.spkiDer,
      ski: subjectKeyIdentifier(key.spkiDer),
      aki: this.parsed.ski,
      isCa: false,
      ...(r.kind === 'server'
        ? { keyUsage: { digitalSignature: true, keyEncipherment: true }, extKeyUsage: 'serverAuth' }
        : { keyUsage: { digitalSignature: true, keyEncipherment: isRsa }, extKeyUsage: 'clientAuth' }),
    };
    const cert = buildCertificate(template, this.signer);
    return {
      serial: integerContentToSerialHex(serialContent),
      certPem: cert.pem,
      ...(key.keyPem === undefined ? {} : { keyPem: key.keyPem }),
      notBefore,
      notAfter,
      commonName,
      keyType: key.keyType,
    };
  }

  /**
   * Builds and signs a v2 CRL (PEM "X509 CRL") and verifies it against this CA before returning it.
   * `number` is the CRL number the caller keeps monotonic.
   */
  buildCrl(o: {
    number: number;
    entries: readonly RevokedEntry[];
    nextUpdateDays: number;
    now?: Date;
  }): string {
    return buildCrl(o, {
      certPem: this.certPem,
      issuerDer: this.parsed.subjectDer,
      ski: this.parsed.ski,
      signer: this.signer,
    });
  }

  private nextSerialBytes(): Buffer {
    for (;;) {
      const b = this.serialBytes();
      if (b.length < 1 || b.length > 19) throw new Error('serial source must give 1-19 bytes');
      if (b.some((x) => x !== 0)) return b; // zero is not a valid serial
    }
  }
}

function checkDays(days: unknown, field: string): number {
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new BadRequest(`${field} must be a whole number of days from 1 to ${MAX_DAYS}`, field);
  }
  return days;
}

function checkNow(now: Date | undefined): Date {
  const d = now ?? new Date();
  if (!(d instanceof Date) || Number.isNaN(d.getTime()))
    throw new BadRequest('now must be a valid Date', 'now');
  return d;
}
