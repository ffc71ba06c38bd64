/**
 * Characters that change how text around them is shown without being visible themselves: C0/C1
 * controls (newline, carriage return, escape, ...), bidirectional overrides and isolates (U+202E
 * turns "gpj.exe" around), zero-width characters and line/paragraph separators. Attacker-chosen text
 * (a failed sign-in's user name) can use them to make one audit row look like several or like another.
 */
const INVISIBLE =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/g;

/** Replaces every such character by a visible mark like "[U+202E]"; other text is returned unchanged. */
export function markInvisible(text: string): string {
  return text.replace(
    INVISIBLE,
    (c) => `[U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`,
  );
}

/** markInvisible applied to every string (keys too) of a JSON-like value. */
export function markInvisibleDeep(value: unknown): unknown {
  if (typeof value === 'string') return markInvisible(value);
  if (Array.isArray(value)) return value.map(markInvisibleDeep);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [markInvisible(k), markInvisibleDeep(v)]),
    );
  }
  return value;
}
