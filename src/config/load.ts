import { readFileSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { yamlLib } from '../lib/yaml.js';
import { z } from 'zod';
import { AppError } from '../lib/errors.js';
import { configSchema, type Config } from './schema.js';
import { resolveStoreTarget, type StoreTarget } from './store-schema.js';

/** Thrown when the configuration is invalid; `problems` lists every bad key by path. Exit code 2. */
export class ConfigError extends AppError {
  constructor(readonly problems: string[]) {
    super(400, 'invalid_config', `invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

export interface LoadOptions {
  /** Path to podgate.yaml; falls back to PODGATE_CONFIG; no file at all is fine. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Highest precedence, e.g. --data-dir. Dotted paths. */
  overrides?: Record<string, unknown>;
}

type Leaf = { path: string[]; kind: 'string' | 'number' | 'boolean' | 'array' | 'record' };

/** camelCase path -> PODGATE_UPPER_SNAKE env name. */
export function envName(path: readonly string[]): string {
  return 'PODGATE_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType;
    else if (s instanceof z.ZodOptional) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s._def.schema;
    else return s;
  }
}

function leaves(schema: z.ZodTypeAny, path: string[] = []): Leaf[] {
  const s = unwrap(schema);
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape as Record<string, z.ZodTypeAny>).flatMap(([k, v]) =>
      leaves(v, [...path, k]),
    );
  }
  if (s instanceof z.ZodNumber) return [{ path, kind: 'number' }];
  if (s instanceof z.ZodBoolean) return [{ path, kind: 'boolean' }];
  if (s instanceof z.ZodArray) return [{ path, kind: 'array' }];
  if (s instanceof z.ZodRecord) return [{ path, kind: 'record' }];
  return [{ path, kind: 'string' }];
}

const LEAVES = leaves(configSchema);

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function fromEnv(leaf: Leaf, raw: string): unknown {
  switch (leaf.kind) {
    case 'number':
      return raw.trim() === '' || Number.isNaN(Number(raw)) ? raw : Number(raw);
    case 'boolean':
      return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
    case 'array':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'record':
      try {
        return JSON.parse(raw);
      } catch {
        return raw;
      }
    default:
      return raw;
  }
}

/** The config file loadConfig will read for `file` (else PODGATE_CONFIG), if any. */
export function configFileFor(file?: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return file ?? (env.PODGATE_CONFIG || undefined);
}

/**
 * Loads podgate.yaml (if any), then PODGATE_* variables, then overrides, and validates the result.
 * Fails with a ConfigError listing every bad key by path; never returns a partial config.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = configFileFor(options.file, env);
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(resolve(file), 'utf8');
    } catch (err) {
      throw new ConfigError([`config file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`]);
    }
    try {
      const doc = yamlLib().parse(text) as unknown;
      if (doc !== null && doc !== undefined) {
        if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('top level must be a mapping');
        raw = doc as Record<string, unknown>;
      }
    } catch (err) {
      throw new ConfigError([`config file ${file}: ${(err as Error).message}`]);
    }
  }
  for (const leaf of LEAVES) {
    const value = env[envName(leaf.path)];
    if (value !== undefined) setPath(raw, leaf.path, fromEnv(leaf, value));
  }
  for (const [path, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) setPath(raw, path.split('.'), value);
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => {
        const path = i.path.join('.') || '(root)';
        return i.code === 'unrecognized_keys'
          ? `${path}: unknown key(s) ${i.keys.join(', ')}`
          : `${path}: ${i.message}`;
      }),
    );
  }
  const store = resolveStoreTarget(result.data.store, env);
  const crossField = [...pathProblems(result.data), ...store.problems];
  if (crossField.length > 0) throw new ConfigError(crossField);
  targets.set(result.data, store.target!);
  return result.data;
}

/** Store targets resolved by loadConfig, against the environment it was given. */
const targets = new WeakMap<Config, StoreTarget>();

/**
 * Where this config's store lives (SQLite in dataDir, or a PostgreSQL server), as resolved when it was
 * loaded. A config made without loadConfig (tests) is resolved now against this process's environment.
 */
export function storeTarget(config: Config): StoreTarget {
  const known = targets.get(config);
  if (known) return known;
  const resolved = resolveStoreTarget(config.store, process.env);
  if (resolved.problems.length > 0) throw new ConfigError(resolved.problems);
  targets.set(config, resolved.target!);
  return resolved.target!;
}

/**
 * Checks between keys that zod's per-key rules cannot see. `backup.dir` equal to the data dir or one of
 * its parents would leave the CA files out of every scheduled backup (the backup dir is excluded from
 * the archive), which shows only at restore.
 */
function pathProblems(config: Config): string[] {
  if (!config.backup.dir) return [];
  const dir = resolve(config.backup.dir);
  const data = resolve(config.dataDir);
  if (data === dir || data.startsWith(dir.endsWith(sep) ? dir : dir + sep)) {
    return [
      `backup.dir: ${dir} is the data dir or one of its parents (dataDir ${data}); backups would leave out the CA files: use a directory outside the data dir, on another disk`,
    ];
  }
  return [];
}
