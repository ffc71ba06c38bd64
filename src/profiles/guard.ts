import { AppError, BadRequest } from '../lib/errors.js';

/**
 * The injection guard for every OpenVPN config podgate writes (a config line can run code: `up`,
 * `script-security`). Two layers: each interpolated value is refused if it could start a new line, and the finished
 * text is checked line by line against a whitelist of directives and the exact PEM blocks expected,
 * so a bug in a template or a value that slipped past validation cannot smuggle in
 * `script-security 2` / `up /bin/sh` or swap a key.
 */

const FORBIDDEN_CHARS = /[\r\n\0]/;

/** Returns the value when it holds no CR, LF or NUL; otherwise a 400 naming the field. */
export function assertSafeValue(field: string, value: string): string {
  if (FORBIDDEN_CHARS.test(value)) {
    throw new BadRequest(`${field} must not contain line breaks or NUL characters`, field);
  }
  return value;
}

export interface RenderRules {
  /** Directive names allowed at the start of a line. */
  directives: ReadonlySet<string>;
  /** Inline blocks (`<ca>…</ca>`) allowed, each with the exact content it must hold. */
  blocks: Readonly<Record<string, string>>;
}

function fail(reason: string): never {
  // A template or validation bug, never the user's fault: 500 with a safe message.
  throw new AppError(500, 'config_guard', `rendered OpenVPN config rejected by the guard: ${reason}`);
}

/**
 * Throws unless every line of `text` is blank, a `#` comment, a whitelisted directive, or part of an
 * expected inline block whose content equals the expected PEM exactly. Every expected block must appear once.
 */
export function checkRenderedConfig(text: string, rules: RenderRules): void {
  if (text.includes('\0') || text.includes('\r')) fail('contains CR or NUL');
  const lines = text.split('\n');
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const open = /^<([a-z0-9-]+)>$/.exec(trimmed);
    if (open) {
      const tag = open[1]!;
      const expected = rules.blocks[tag];
      if (expected === undefined) fail(`unexpected inline block <${tag}> at line ${i + 1}`);
      if (seen.has(tag)) fail(`inline block <${tag}> appears twice`);
      const end = lines.indexOf(`</${tag}>`, i + 1);
      if (end < 0) fail(`inline block <${tag}> is not closed`);
      const body = lines
        .slice(i + 1, end)
        .join('\n')
        .trim();
      if (body !== expected.trim()) fail(`inline block <${tag}> does not hold the expected content`);
      seen.add(tag);
      i = end;
      continue;
    }
    const directive = trimmed.split(/\s+/, 1)[0]!;
    if (!rules.directives.has(directive)) fail(`directive "${directive}" at line ${i + 1} is not allowed`);
  }
  for (const tag of Object.keys(rules.blocks)) {
    if (!seen.has(tag)) fail(`inline block <${tag}> is missing`);
  }
}
