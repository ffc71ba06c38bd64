import { loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { openContext, type ContextDeps } from './services/context.js';
import type { CliEnv } from './cli/env.js';

/**
 * The composition root: the only place that chooses real dependencies (publishers, Kubernetes
 * client, management socket). Everything else receives them.
 */
export function contextDepsFor(_config: Config): ContextDeps {
  return { publishers: [] };
}

export function realCliEnv(): CliEnv {
  return {
    env: process.env,
    loadConfig: (opts) => loadConfig({ file: opts.config, overrides: { dataDir: opts.dataDir } }),
    openContext,
    contextDeps: contextDepsFor,
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : text + '\n'),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : text + '\n'),
  };
}
