import { yamlLib } from '../lib/yaml.js';

/**
 * Parses a kubeconfig's text. Kubeconfigs are YAML, but nearly all of them are what `kubectl config`
 * and cluster installers write: block mappings and sequences of plain or quoted scalars. That form is
 * read here in well under a millisecond; anything else (flow collections, anchors, tags, block
 * scalars, multi-line plain scalars, several documents) goes to the yaml package, whose loading alone
 * costs a cluster-mode CLI call 60-100 ms. JSON kubeconfigs are parsed as JSON.
 *
 * Throws what the yaml package throws for text that is not YAML.
 */
export function parseKubeconfigText(text: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      // YAML flow style rather than JSON
    }
  }
  const fast = parseBlockYaml(text);
  return fast !== NOT_SIMPLE ? fast : yamlLib().parse(text);
}

/** Returned when the text is outside the block subset: the caller hands it to the full parser. */
export const NOT_SIMPLE: unique symbol = Symbol('not simple block YAML');

class NotSimple extends Error {}

interface Line {
  indent: number;
  text: string;
}

const KEY = /^([A-Za-z0-9_][A-Za-z0-9_.\-/]*)\s*:(?:\s+(.*))?$/;
const INT = /^[-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;

/**
 * The block subset of YAML 1.2 (core schema) that kubeconfigs use, or NOT_SIMPLE for anything else:
 * it never guesses, so a text it accepts reads as the yaml package reads it (unit-tested side by side).
 */
export function parseBlockYaml(text: string): unknown {
  const lines: Line[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const body = line.trimStart();
    if (body === '' || body.startsWith('#')) continue;
    const lead = line.slice(0, line.length - body.length);
    if (lead.includes('\t') || /^(---|\.\.\.|%)/.test(line)) return NOT_SIMPLE;
    lines.push({ indent: lead.length, text: body.trimEnd() });
  }
  if (lines.length === 0) return null;
  try {
    let i = 0;
    const node = (indent: number): unknown => (isItem(lines[i]!.text) ? sequence(indent) : mapping(indent));

    const mapping = (indent: number): Record<string, unknown> => {
      const out: Record<string, unknown> = {};
      while (i < lines.length && lines[i]!.indent === indent && !isItem(lines[i]!.text)) {
        const m = KEY.exec(lines[i]!.text);
        if (!m || Object.hasOwn(out, m[1]!)) throw new NotSimple();
        i++;
        const rest = m[2] === undefined ? '' : stripComment(m[2]);
        if (rest !== '') {
          out[m[1]!] = scalar(rest);
          if (i < lines.length && lines[i]!.indent > indent) throw new NotSimple(); // a continued scalar
        } else if (i < lines.length && lines[i]!.indent > indent) out[m[1]!] = node(lines[i]!.indent);
        else if (i < lines.length && lines[i]!.indent === indent && isItem(lines[i]!.text))
          out[m[1]!] = sequence(indent);
        else out[m[1]!] = null;
      }
      return out;
    };

    const sequence = (indent: number): unknown[] => {
      const out: unknown[] = [];
      while (i < lines.length && lines[i]!.indent === indent && isItem(lines[i]!.text)) {
        const rest = lines[i]!.text.slice(1);
        const inner = rest.trimStart();
        if (inner === '' || inner.startsWith('#')) {
          i++;
          out.push(i < lines.length && lines[i]!.indent > indent ? node(lines[i]!.indent) : null);
        } else if (KEY.test(inner) || isItem(inner)) {
          // `- key: value`: a mapping (or sequence) whose first line starts after the dash
          lines[i] = { indent: indent + 1 + rest.length - inner.length, text: inner };
          out.push(node(lines[i]!.indent));
        } else {
          i++;
          out.push(scalar(stripComment(inner)));
          if (i < lines.length && lines[i]!.indent > indent) throw new NotSimple();
        }
      }
      return out;
    };

    const value = node(lines[0]!.indent);
    if (i !== lines.length) throw new NotSimple(); // an indentation the subset does not follow
    return value;
  } catch (err) {
    if (err instanceof NotSimple) return NOT_SIMPLE;
    throw err;
  }
}

function isItem(text: string): boolean {
  return text === '-' || text.startsWith('- ');
}

/** A value without its trailing ` # comment`; quoted values keep a `#` inside their quotes. */
function stripComment(value: string): string {
  if (value.startsWith("'") || value.startsWith('"')) {
    const end = value.startsWith("'") ? /^'(?:[^']|'')*'/.exec(value) : /^"(?:[^"\\]|\\.)*"/.exec(value);
    if (!end) throw new NotSimple();
    const after = value.slice(end[0].length);
    if (after.trim() !== '' && !/^\s+#/.test(after)) throw new NotSimple();
    return end[0];
  }
  const hash = value.search(/\s#/);
  return (hash < 0 ? value : value.slice(0, hash)).trimEnd();
}

function scalar(value: string): unknown {
  if (value.startsWith("'")) return value.slice(1, -1).replace(/''/g, "'");
  if (value.startsWith('"')) {
    // JSON's escapes are a subset of YAML's; a YAML-only escape (\x41, \e, …) is not simple
    try {
      return JSON.parse(value) as unknown;
    } catch {
      throw new NotSimple();
    }
  }
  if (/^[[\]{}&*!|>%@`,?:-]/.test(value) && !/^-[0-9.]/.test(value)) throw new NotSimple();
  if (/:(\s|$)/.test(value)) throw new NotSimple(); // a nested mapping on one line
  if (/^(?:true|True|TRUE)$/.test(value)) return true;
  if (/^(?:false|False|FALSE)$/.test(value)) return false;
  if (/^(?:null|Null|NULL|~)$/.test(value)) return null;
  if (INT.test(value) || FLOAT.test(value)) return Number(value);
  if (/^[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)$/.test(value) || /^0[xo]/.test(value)) throw new NotSimple();
  return value;
}
