/**
 * Deep redaction for log records. pino's path-based `redact` only reaches the paths listed, so a
 * password inside an error's cause or a key inside a nested details object went out in clear. Here
 * every key that names a secret is replaced at any depth, errors are turned into plain objects (with
 * their own properties and causes) so their contents are redacted too, and private-key PEM blocks are
 * cut out of every string (an error message that quotes a profile must not leak the key).
 */

export const REDACTED = '[Redacted]';

/** Key names that carry secrets, whatever their nesting: passwords, keys, tokens, cookies, envelopes. */
const SECRET_KEY =
  /pass(word|phrase|wd)|secret|token|keypem|privatekey|authorization|cookie|credential|envelope|apikey|^kek$/i;
const PRIVATE_KEY_PEM =
  /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY|OpenVPN [A-Za-z0-9 -]+)-----[\s\S]*?(-----END [^-]+-----|$)/g;
const MAX_DEPTH = 12;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** The text with private-key PEM blocks replaced. */
export function redactString(s: string): string {
  return s.includes('-----BEGIN ') ? s.replace(PRIVATE_KEY_PEM, REDACTED) : s;
}

function errorFields(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: e.constructor?.name ?? 'Error', message: e.message };
  if (e.stack) out.stack = e.stack;
  for (const [k, v] of Object.entries(e)) out[k] = v;
  if ('cause' in e && e.cause !== undefined) out.cause = e.cause;
  return out;
}

/** A copy of `value` with secrets replaced; never mutates the input; cycles become "[Circular]". */
export function redactDeep(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (Buffer.isBuffer(value)) return `[Buffer ${value.length} bytes]`;
  if (value instanceof Date) return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Too deep]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1, seen));
    const source = value instanceof Error ? errorFields(value) : (value as Record<string, unknown>);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(source)) {
      out[k] = isSecretKey(k) && v !== undefined && v !== null ? REDACTED : redactDeep(v, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
