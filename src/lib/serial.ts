/**
 * Certificate serial numbers. podgate keeps every serial in one form, the one `openssl x509 -noout
 * -serial` prints: upper-case hex, an even number of digits, at most 20 bytes (RFC 5280 §4.1.2.2).
 * This module is the only place that decides what a serial looks like.
 */

/** RFC 5280: conforming CAs use serials of at most 20 octets. */
export const SERIAL_MAX_BYTES = 20;

const CANONICAL = new RegExp(`^(?:[0-9A-F]{2}){1,${SERIAL_MAX_BYTES}}$`);
const TYPED = new RegExp(`^[0-9A-F]{1,${SERIAL_MAX_BYTES * 2}}$`);

/** What the error messages say a serial must be. */
export const SERIAL_RULE = `hex, 1-${SERIAL_MAX_BYTES} bytes`;

/** True when `value` is already in the stored form (upper-case hex, even length, 1–20 bytes). */
export function isSerial(value: unknown): value is string {
  return typeof value === 'string' && CANONICAL.test(value);
}

/**
 * A serial as people and tools write it ("0a:1b", "0x0A1B", "a1b", "0A1B") in the stored form, or
 * undefined when the text is not a serial (so callers can try it as a name instead). Odd lengths get a
 * leading 0; leading zero bytes are kept, since a lookup must match the stored text exactly.
 */
export function parseSerial(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const hex = value.replace(/^0x/i, '').replace(/:/g, '').toUpperCase();
  if (!TYPED.test(hex)) return undefined;
  return hex.length % 2 === 1 ? `0${hex}` : hex;
}
