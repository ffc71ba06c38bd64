/**
 * Minimal DER reading and writing on Buffers. Building goes through forge.asn1 where forge has the
 * structure; this file exists because verifying a signature needs the exact signed bytes (re-encoding a
 * parsed structure is not guaranteed to reproduce them), and because certificate assembly and PEM framing
 * are a few lines that need no library.
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
  CONTEXT_0: 0xa0,
  CONTEXT_3: 0xa3,
} as const;

/** One tag-length-value inside `buf`: `start` is the tag byte, `[contentStart, end)` the content. */
export interface Tlv {
  readonly buf: Buffer;
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

/** Thrown for malformed DER; callers turn it into an AppError that names their input. */
export class DerError extends Error {}

/** Reads the TLV at `offset`. Single-byte tags only (all X.509 structures podgate reads use them). */
export function readTlv(buf: Buffer, offset = 0, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  let len = buf[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('indefinite or oversized length');
    if (pos + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i]!;
    pos += n;
  }
  const end = pos + len;
  if (end > limit) throw new DerError('length past the end');
  return { buf, tag, start: offset, contentStart: pos, end };
}

/** Reads the one TLV that must fill all of `buf`. */
export function readRoot(buf: Buffer): Tlv {
  const t = readTlv(buf, 0);
  if (t.end !== buf.length) throw new DerError('trailing bytes');
  return t;
}

/** The children of a constructed TLV, in order. */
export function childrenOf(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = t.contentStart;
  while (pos < t.end) {
    const c = readTlv(t.buf, pos, t.end);
    out.push(c);
    pos = c.end;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError(`${what}: unexpected structure`);
  return t;
}

/** The whole encoding (tag, length and content). */
export function rawOf(t: Tlv): Buffer {
  return t.buf.subarray(t.start, t.end);
}

export function contentOf(t: Tlv): Buffer {
  return t.buf.subarray(t.contentStart, t.end);
}

/** Encodes a length in DER (short form below 128, long form above). */
function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encodes one TLV from a tag and content parts. */
export function encodeTlv(tag: number, ...content: Buffer[]): Buffer {
  return encodeTlvList(tag, content);
}

/** {@link encodeTlv} for a long list of parts (no argument spreading). */
export function encodeTlvList(tag: number, content: readonly Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

/**
 * The content octets of a positive DER INTEGER for a serial given as hex (any leading zero bytes are
 * dropped, and one 00 is prefixed when the high bit is set, as DER requires).
 */
export function serialHexToIntegerContent(hex: string): Buffer {
  return Buffer.from(serialHexToIntegerHex(hex), 'hex');
}

/** {@link serialHexToIntegerContent} as upper-case hex text (no Buffer: used per CRL entry). */
export function serialHexToIntegerHex(hex: string): string {
  let i = 0;
  while (i < hex.length - 2 && hex[i] === '0' && hex[i + 1] === '0') i += 2;
  const mag = hex.slice(i).toUpperCase();
  return mag.charCodeAt(0) >= 0x38 /* '8' and above: high bit set */ ? `00${mag}` : mag;
}

/**
 * The serial string for INTEGER content octets, exactly as `openssl x509 -noout -serial` prints it:
 * upper-case hex of the magnitude with leading zero bytes dropped (always an even number of digits).
 */
export function integerContentToSerialHex(content: Buffer): string {
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  return content.subarray(i).toString('hex').toUpperCase();
}

/** PEM text of DER bytes (64-character lines, trailing newline). */
export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** DER bytes of the first PEM block with one of `labels`; throws DerError when there is none. */
export function fromPem(pem: string, labels: readonly string[]): Buffer {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----/.exec(pem);
  if (!m || !labels.includes(m[1]!))
    throw new DerError(`expected a PEM block ${labels.map((l) => `"${l}"`).join(' or ')}`);
  const der = Buffer.from(m[2]!.replace(/[\r\n]/g, ''), 'base64');
  if (der.length === 0) throw new DerError('empty PEM block');
  return der;
}

/** Parses UTCTime / GeneralizedTime content (the `Z` forms DER requires). */
export function parseTime(t: Tlv): Date {
  const s = contentOf(t).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === TAG.UTC_TIME && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (
    t.tag === TAG.GENERALIZED_TIME &&
    (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))
  ) {
    year = Number(m[1]);
  } else throw new DerError('bad time');
  const d = new Date(
    Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])),
  );
  if (Number.isNaN(d.getTime())) throw new DerError('bad time');
  return d;
}

/** Decodes the directory-string forms found in subject names. */
export function decodeString(t: Tlv): string {
  const c = contentOf(t);
  switch (t.tag) {
    case TAG.UTF8_STRING:
      return c.toString('utf8');
    case TAG.BMP_STRING: {
      const swapped = Buffer.from(c);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    default:
      return c.toString('latin1');
  }
}

/** OID 2.5.4.3 (commonName), DER content octets. */
const CN_OID = Buffer.from([0x55, 0x04, 0x03]);

/** The (last) commonName of a Name, or undefined when it has none. */
export function commonNameOf(name: Tlv): string | undefined {
  let cn: string | undefined;
  for (const rdn of childrenOf(name)) {
    for (const atv of childrenOf(rdn)) {
      const [oid, value] = childrenOf(atv);
      if (oid && value && oid.tag === TAG.OID && contentOf(oid).equals(CN_OID)) cn = decodeString(value);
    }
  }
  return cn;
}
