import { createPublicKey, type KeyObject } from 'node:crypto';
import { BadRequest } from '../lib/errors.js';
import { sigAlgOf, verifySignature } from './algorithms.js';
import { childrenOf, commonNameOf, contentOf, expectTag, fromPem, rawOf, readRoot, TAG } from './der.js';
import { keyTypeOf } from './keys.js';

/**
 * Reads a PKCS#10 request (PEM "CERTIFICATE REQUEST") and checks its self-signature, which proves the
 * requester holds the private key. Parsed with a small DER reader and verified with Node's crypto because
 * forge cannot read EC requests. Accepts RSA (2048-8192 bits, public exponent at least 65537) and EC
 * P-256/P-384 keys, and exactly one PEM block. The common name
 * is returned as written; the caller decides whether to use it (podgate names certificates itself).
 * Throws BadRequest('csr: ...', 'csr') for anything else.
 */
export function parseCsr(csrPem: string): { commonName?: string; publicKeyPem: string } {
  let parts: ReturnType<typeof readParts>;
  try {
    parts = readParts(csrPem);
  } catch (e) {
    if (e instanceof BadRequest) throw e;
    throw new BadRequest('csr: not a valid PKCS#10 certificate request', 'csr', e);
  }
  const { criDer, algId, signature, spkiDer, commonName } = parts;
  const alg = sigAlgOf(algId);
  if (!alg)
    throw new BadRequest(
      'csr: unsupported signature algorithm (use RSA PKCS#1 v1.5 or ECDSA with SHA-2)',
      'csr',
    );
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (e) {
    throw new BadRequest('csr: the public key cannot be read', 'csr', e);
  }
  if (!keyTypeOf(key))
    throw new BadRequest(
      'csr: unsupported key (use RSA 2048-8192 bits with public exponent 65537 or larger, EC P-256 or EC P-384)',
      'csr',
    );
  if (!verifySignature(alg, criDer, key, signature)) {
    throw new BadRequest(
      'csr: the signature does not match the request (altered, or not signed by its key)',
      'csr',
    );
  }
  return {
    ...(commonName === undefined ? {} : { commonName }),
    publicKeyPem: key.export({ type: 'spki', format: 'pem' }) as string,
  };
}

function readParts(csrPem: string) {
  if (typeof csrPem !== 'string') throw new BadRequest('csr must be a PEM text', 'csr');
  // One request per upload: with two, which key gets certified would depend on which one a parser reads.
  if ((csrPem.match(/-----BEGIN /g) ?? []).length > 1)
    throw new BadRequest('csr: holds more than one PEM block; send exactly one certificate request', 'csr');
  const der = fromPem(csrPem, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
  const [cri, algId, sigBits, extra] = childrenOf(
    expectTag(readRoot(der), TAG.SEQUENCE, 'CertificationRequest'),
  );
  if (extra) throw new Error('CertificationRequest: trailing fields');
  const [version, subject, spki] = childrenOf(expectTag(cri, TAG.SEQUENCE, 'CertificationRequestInfo'));
  if (!contentOf(expectTag(version, TAG.INTEGER, 'version')).equals(Buffer.from([0]))) {
    throw new BadRequest('csr: unsupported request version', 'csr');
  }
  const sig = contentOf(expectTag(sigBits, TAG.BIT_STRING, 'signature'));
  if (sig[0] !== 0) throw new Error('signature: unused bits');
  return {
    criDer: rawOf(cri!),
    algId: expectTag(algId, TAG.SEQUENCE, 'signatureAlgorithm'),
    signature: sig.subarray(1),
    spkiDer: rawOf(expectTag(spki, TAG.SEQUENCE, 'subjectPKInfo')),
    commonName: commonNameOf(expectTag(subject, TAG.SEQUENCE, 'subject')),
  };
}
