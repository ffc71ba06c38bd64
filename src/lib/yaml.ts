import { createRequire } from 'node:module';

type Yaml = typeof import('yaml');
let yaml: Yaml | undefined;

/**
 * The yaml package, loaded on first use: a CLI call without podgate.yaml and without a rules file reads
 * no YAML, and the parser is a large part of what a start would load. Callers stay synchronous: the
 * CLI preloads it (preloadYaml: the bundle's chunks/yaml.cjs, while the composition root loads) when a config
 * file is named; otherwise it is required here, from node_modules, on first use.
 */
export function yamlLib(): Yaml {
  yaml ??= createRequire(import.meta.url)('yaml') as Yaml;
  return yaml;
}

/** Loads the yaml package ahead of a synchronous yamlLib() call. */
export async function preloadYaml(): Promise<void> {
  const m = await import('yaml');
  // bundled, the CommonJS package's namespace may hold it only as `default`
  yaml ??= typeof m.parse === 'function' ? m : (m as unknown as { default: Yaml }).default;
}
