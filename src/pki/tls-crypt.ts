/**
 * OpenVPN control-channel keys, made with node:crypto only (no I/O):
 * - tls-crypt-v2 server key (128 bytes: Ke = bytes 0-31 for AES-256-CTR, Ka = bytes 64-95 for HMAC-SHA256);
 * - tls-crypt-v2 client key: Kc (256 random bytes) followed by WKc, the client key wrapped with the
 *   server key, so the server needs no per-client state;
 * - tls-crypt static key ("OpenVPN Static key V1", 256 bytes as hex).
 *
 * Wrapping is deterministic (the IV is the tag), so a key from `openvpn --genkey tls-crypt-v2-client`
 * can be unwrapped and re-wrapped here byte for byte: that is how the unit tests check this file.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { BadRequest } from '../lib/errors.js';

const SERVER_LABEL = 'OpenVPN tls-crypt-v2 server key';
const CLIENT_LABEL = 'OpenVPN tls-crypt-v2 client key';
const STATIC_LABEL = 'OpenVPN Static key V1';
const SERVER_KEY_BYTES = 128;
const CLIENT_KC_BYTES = 256;
const TAG_BYTES = 32;
/** Metadata types from openvpn's tls_crypt.h. */
const METADATA_TYPE_USER = 0x00;
const METADATA_TYPE_TIMESTAMP = 0x01;
/** openvpn refuses WKc longer than this (TLS_CRYPT_V2_MAX_WKC_LEN). */
const MAX_WKC_BYTES = 1024;

function pemEncode(label: string, der: Buffer): string {
  const b64 = der.toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function pemDecode(field: string, label: string, pem: string): Buffer {
  if (typeof pem !== 'string') throw new BadRequest(`${field}: expected a PEM string`, field);
  const m = pem.match(
    new RegExp(`-----BEGIN ${label}-----\\r?\\n([A-Za-z0-9+/=\\r\\n]+?)-----END ${label}-----`),
  );
  if (!m) throw new BadRequest(`${field}: not a PEM block "${label}"`, field);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

function serverKeyParts(serverKeyPem: string): { ke: Buffer; ka: Buffer } {
  const key = pemDecode('serverKeyPem', SERVER_LABEL, serverKeyPem);
  if (key.length !== SERVER_KEY_BYTES) {
    throw new BadRequest(
      `serverKeyPem: expected ${SERVER_KEY_BYTES} bytes, got ${key.length}`,
      'serverKeyPem',
    );
  }
  return { ke: key.subarray(0, 32), ka: key.subarray(64, 96) };
}

/** A new tls-crypt-v2 server key (PEM "OpenVPN tls-crypt-v2 server key"), as `openvpn --genkey tls-crypt-v2-server` makes. */
export function generateTlsCryptV2ServerKey(): string {
  return pemEncode(SERVER_LABEL, randomBytes(SERVER_KEY_BYTES));
}

export interface WrapOptions {
  /** Metadata timestamp (openvpn's default metadata type); default now. */
  timestamp?: Date;
  /** User metadata bytes instead of a timestamp (type 0x00). */
  userMetadata?: Buffer;
  /** The client key material Kc (256 bytes); random by default. Tests pass openvpn's to compare bytes. */
  kc?: Buffer;
}

/** The metadata block openvpn puts after Kc: type byte + payload. */
export function encodeMetadata(opts: Pick<WrapOptions, 'timestamp' | 'userMetadata'> = {}): Buffer {
  if (opts.userMetadata) return Buffer.concat([Buffer.from([METADATA_TYPE_USER]), opts.userMetadata]);
  const ts = Buffer.alloc(9);
  ts[0] = METADATA_TYPE_TIMESTAMP;
  ts.writeBigInt64BE(BigInt(Math.floor((opts.timestamp ?? new Date()).getTime() / 1000)), 1);
  return ts;
}

/**
 * A new tls-crypt-v2 client key wrapped with the server key (PEM "OpenVPN tls-crypt-v2 client key"):
 * Kc ‖ WKc, WKc = T ‖ AES-256-CTR(Ke, IV = T[0..16], Kc ‖ metadata) ‖ len,
 * T = HMAC-SHA256(Ka, len ‖ Kc ‖ metadata), len = big-endian uint16 length of WKc.
 */
export function wrapTlsCryptV2ClientKey(serverKeyPem: string, opts: WrapOptions = {}): string {
  const { ke, ka } = serverKeyParts(serverKeyPem);
  const kc = opts.kc ?? randomBytes(CLIENT_KC_BYTES);
  if (kc.length !== CLIENT_KC_BYTES) throw new BadRequest(`kc: expected ${CLIENT_KC_BYTES} bytes`, 'kc');
  const metadata = encodeMetadata(opts);
  const plain = Buffer.concat([kc, metadata]);
  const wkcLen = TAG_BYTES + plain.length + 2;
  if (wkcLen > MAX_WKC_BYTES)
    throw new BadRequest('userMetadata: too long for a tls-crypt-v2 client key', 'userMetadata');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(wkcLen);
  const tag = createHmac('sha256', ka).update(len).update(plain).digest();
  const cipher = createCipheriv('aes-256-ctr', ke, tag.subarray(0, 16));
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  return pemEncode(CLIENT_LABEL, Buffer.concat([kc, tag, encrypted, len]));
}

/**
 * Reverses the wrapping with the server key and checks the tag, as the server does on every
 * handshake. Returns Kc and the raw metadata (type byte first). Throws BadRequest when the key was
 * wrapped with another server key or is damaged.
 */
export function unwrapTlsCryptV2ClientKey(
  serverKeyPem: string,
  clientKeyPem: string,
): { kc: Buffer; metadata: Buffer } {
  const { ke, ka } = serverKeyParts(serverKeyPem);
  const raw = pemDecode('clientKeyPem', CLIENT_LABEL, clientKeyPem);
  if (raw.length < CLIENT_KC_BYTES + TAG_BYTES + CLIENT_KC_BYTES + 2) {
    throw new BadRequest('clientKeyPem: too short for a tls-crypt-v2 client key', 'clientKeyPem');
  }
  const wkc = raw.subarray(CLIENT_KC_BYTES);
  const len = wkc.readUInt16BE(wkc.length - 2);
  if (len !== wkc.length)
    throw new BadRequest('clientKeyPem: wrapped key length does not match', 'clientKeyPem');
  const tag = wkc.subarray(0, TAG_BYTES);
  const decipher = createDecipheriv('aes-256-ctr', ke, tag.subarray(0, 16));
  const plain = Buffer.concat([decipher.update(wkc.subarray(TAG_BYTES, wkc.length - 2)), decipher.final()]);
  const expected = createHmac('sha256', ka)
    .update(wkc.subarray(wkc.length - 2))
    .update(plain)
    .digest();
  if (!timingSafeEqual(expected, tag)) {
    throw new BadRequest('clientKeyPem: not wrapped with this server key (tag mismatch)', 'clientKeyPem');
  }
  const kc = plain.subarray(0, CLIENT_KC_BYTES);
  if (!kc.equals(raw.subarray(0, CLIENT_KC_BYTES))) {
    throw new BadRequest('clientKeyPem: Kc does not match its wrapped copy', 'clientKeyPem');
  }
  return { kc: Buffer.from(kc), metadata: Buffer.from(plain.subarray(CLIENT_KC_BYTES)) };
}

/** A new tls-crypt static key in openvpn's "OpenVPN Static key V1" format (256 bytes, 16 hex lines). */
export function generateTlsCryptKey(): string {
  const hex = randomBytes(256).toString('hex');
  const lines = hex.match(/.{32}/g)!;
  return `#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN ${STATIC_LABEL}-----\n${lines.join('\n')}\n-----END ${STATIC_LABEL}-----\n`;
}
