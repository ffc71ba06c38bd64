import forge from 'node-forge';
import { encodeTlv, TAG, toPem } from './der.js';
import type { Signer } from './algorithms.js';

/**
 * Assembles an X.509 v3 certificate: forge lays out the TBSCertificate (version, serial, validity,
 * subject, extensions); the parts forge cannot write are spliced in as raw DER (EC public keys, the
 * issuer Name copied byte for byte from the CA certificate, the RFC 5758 ECDSA AlgorithmIdentifier);
 * the signature is made natively by `signer`.
 */

const { asn1 } = forge;

// Typed view of the forge functions @types/node-forge does not declare.
const forgePki = forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };
const fromDer = asn1.fromDer as unknown as (
  bytes: string,
  options: { decodeBitStrings: boolean },
) => forge.asn1.Asn1;

/** forge wants a public key to lay out the TBS; the real SubjectPublicKeyInfo replaces it afterwards. */
const PLACEHOLDER_KEY = forge.pki.setRsaPublicKey(
  new forge.jsbn.BigInteger('3'),
  new forge.jsbn.BigInteger('3'),
);

export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
} as const;

export interface CertTemplate {
  /** Content octets of the serial INTEGER (already positive and minimal). */
  serialContent: Buffer;
  notBefore: Date;
  notAfter: Date;
  subjectCommonName: string;
  /** DER of the issuer Name; undefined for a self-signed certificate (issuer = subject). */
  issuerDer?: Buffer;
  spkiDer: Buffer;
  ski: Buffer;
  aki: Buffer;
  isCa: boolean;
  keyUsage: {
    digitalSignature?: boolean;
    keyEncipherment?: boolean;
    keyCertSign?: boolean;
    cRLSign?: boolean;
  };
  extKeyUsage?: 'serverAuth' | 'clientAuth';
}

export interface BuiltCertificate {
  der: Buffer;
  pem: string;
}

/** Builds, signs and PEM-encodes a certificate from a template. */
export function buildCertificate(t: CertTemplate, signer: Signer): BuiltCertificate {
  const cert = forge.pki.createCertificate();
  cert.version = 2;
  cert.serialNumber = t.serialContent.toString('hex');
  cert.validity.notBefore = t.notBefore;
  cert.validity.notAfter = t.notAfter;
  cert.publicKey = PLACEHOLDER_KEY;
  // UTF8String, not forge's default PrintableString: names may contain "_", which PrintableString lacks.
  cert.setSubject([
    {
      type: '2.5.4.3',
      value: t.subjectCommonName,
      valueTagClass: asn1.Type.UTF8 as unknown as forge.asn1.Class,
    },
  ]);
  cert.siginfo.algorithmOid = signer.algorithm.oid;
  cert.setExtensions(extensionsOf(t));

  const tbs = forgePki.getTBSCertificate(cert);
  const fields = tbs.value as forge.asn1.Asn1[];
  fields[2] = derToAsn1(signer.algorithm.der);
  if (t.issuerDer) fields[3] = derToAsn1(t.issuerDer);
  else fields[3] = fields[5]!;
  fields[6] = derToAsn1(t.spkiDer);

  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = signer.sign(tbsDer);
  const der = encodeTlv(
    TAG.SEQUENCE,
    tbsDer,
    signer.algorithm.der,
    encodeTlv(TAG.BIT_STRING, Buffer.from([0]), signature),
  );
  return { der, pem: toPem('CERTIFICATE', der) };
}

function extensionsOf(t: CertTemplate): object[] {
  const exts: object[] = [
    { name: 'basicConstraints', cA: t.isCa, critical: true },
    { name: 'keyUsage', critical: true, ...t.keyUsage },
  ];
  if (t.extKeyUsage) exts.push({ name: 'extKeyUsage', [t.extKeyUsage]: true });
  exts.push(
    // An explicit value: forge would otherwise hash the placeholder key.
    {
      name: 'subjectKeyIdentifier',
      value: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, binary(t.ski)),
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: binary(t.aki) },
  );
  return exts;
}

function derToAsn1(der: Buffer): forge.asn1.Asn1 {
  // decodeBitStrings: false keeps EC public key bits opaque (forge would try to parse them as ASN.1).
  return fromDer(binary(der), { decodeBitStrings: false });
}

function binary(b: Buffer): string {
  return b.toString('binary');
}
