import { createRequire } from 'node:module';

type Yaml = typeof import('yaml');
let yaml: Yaml | undefined;

/**
 * The yaml package, loaded on first use: most CLI calls read no YAML at all (no podgate.yaml, no rules
 * file), and it is a large parser to load on every start. Required (it ships CommonJS) so that callers
 * stay synchronous; the bundle keeps it external.
 */
export function yamlLib(): Yaml {
  yaml ??= createRequire(import.meta.url)('yaml') as Yaml;
  return yaml;
}
