import { createRequire } from 'node:module';
import type forgeTypes from 'node-forge';
import { encodeTlv, TAG, toPem } from './der.js';
import type { Signer } from './algorithms.js';

/**
 * Assembles an X.509 v3 certificate: forge lays out the TBSCertificate (version, serial, validity,
 * subject, extensions); the parts forge cannot write are spliced in as raw DER (EC public keys, the
 * issuer Name copied byte for byte from the CA certificate, the RFC 5758 ECDSA AlgorithmIdentifier);
 * the signature is made natively by `signer`.
 */

type Forge = typeof forgeTypes;
type Asn1 = forgeTypes.asn1.Asn1;

interface ForgeParts {
  forge: Forge;
  asn1: Forge['asn1'];
  // Typed view of the forge functions @types/node-forge does not declare.
  getTBSCertificate(c: forgeTypes.pki.Certificate): Asn1;
  fromDer(bytes: string, options: { decodeBitStrings: boolean }): Asn1;
  /** forge wants a public key to lay out the TBS; the real SubjectPublicKeyInfo replaces it afterwards. */
  placeholderKey: forgeTypes.pki.rsa.PublicKey;
}

let parts: ForgeParts | undefined;

/**
 * node-forge, loaded on the first certificate built: only issuing needs it (CRLs, key files and
 * certificate parsing are DER code of our own), so `cert list`, `cert revoke` and the agent never pay
 * for loading it. Only the X.509 part of forge is loaded (not TLS, PKCS#7/#12, SSH …); the bundle keeps
 * forge external and it is required from node_modules here (synchronously, as building is).
 */
function forgeParts(): ForgeParts {
  if (parts) return parts;
  const req = createRequire(import.meta.url);
  req('node-forge/lib/x509.js');
  const forge = req('node-forge/lib/forge.js') as Forge;
  const pki = forge.pki as unknown as { getTBSCertificate(c: forgeTypes.pki.Certificate): Asn1 };
  parts = {
    forge,
    asn1: forge.asn1,
    getTBSCertificate: (c) => pki.getTBSCertificate(c),
    fromDer: forge.asn1.fromDer as unknown as ForgeParts['fromDer'],
    placeholderKey: forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger('3'), new forge.jsbn.BigInteger('3')),
  };
  return parts;
}

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
  const { forge, asn1, getTBSCertificate, placeholderKey } = forgeParts();
  const cert = forge.pki.createCertificate();
  cert.version = 2;
  cert.serialNumber = t.serialContent.toString('hex');
  cert.validity.notBefore = t.notBefore;
  cert.validity.notAfter = t.notAfter;
  cert.publicKey = placeholderKey;
  // UTF8String, not forge's default PrintableString: names may contain "_", which PrintableString lacks.
  cert.setSubject([
    {
      type: '2.5.4.3',
      value: t.subjectCommonName,
      valueTagClass: asn1.Type.UTF8 as unknown as forgeTypes.asn1.Class,
    },
  ]);
  cert.siginfo.algorithmOid = signer.algorithm.oid;
  cert.setExtensions(extensionsOf(t));

  const tbs = getTBSCertificate(cert);
  const fields = tbs.value as Asn1[];
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
  const { asn1 } = forgeParts();
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

function derToAsn1(der: Buffer): Asn1 {
  // decodeBitStrings: false keeps EC public key bits opaque (forge would try to parse them as ASN.1).
  return forgeParts().fromDer(binary(der), { decodeBitStrings: false });
}

function binary(b: Buffer): string {
  return b.toString('binary');
}
