#!/usr/bin/env node
import { CommanderError } from 'commander';
import type { CliEnv } from './cli/env.js';
import { isAppError } from './lib/errors.js';
import { buildProgram } from './cli/program.js';

/**
 * The CLI's environment, with the composition root (./main.js: config, store, PKI, publishers, the
 * logger) imported just before the first action runs: help, `--version` and usage errors load none of it.
 */
function lazyEnv(): { env: CliEnv; load: (configFile?: string) => Promise<void> } {
  let real: CliEnv | undefined;
  const root = (): CliEnv => {
    if (!real) throw new Error('the composition root is loaded before an action runs');
    return real;
  };
  const env: CliEnv = {
    env: process.env,
    loadConfig: (opts) => root().loadConfig(opts),
    openContext: (config, deps) => root().openContext(config, deps),
    contextDeps: (config, use) => root().contextDeps(config, use),
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : text + '\n'),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : text + '\n'),
  };
  return {
    env,
    load: async (configFile) => {
      const [main] = await Promise.all([
        import('./main.js'),
        // podgate.yaml is parsed synchronously by loadConfig: its parser is loaded now, beside the root
        (await import('./config/load.js')).configFileFor(configFile)
          ? import('./lib/yaml.js').then((y) => y.preloadYaml())
          : undefined,
      ]);
      real ??= main.realCliEnv();
    },
  };
}

/** Exit codes, the same for every command: 0 ok, 1 failure, 2 bad usage or bad input (nothing changed). */
async function main(argv: string[]): Promise<number> {
  const { env, load } = lazyEnv();
  const program = await buildProgram(env, argv);
  program.hook('preAction', (_program, action) =>
    load((action.optsWithGlobals() as { config?: string }).config),
  );
  try {
    await program.parseAsync(argv);
    // A command that finished but found a failure (doctor, user sync) sets process.exitCode itself.
    return Number(process.exitCode ?? 0) || 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
        return 0;
      return 2; // commander already printed the usage problem
    }
    const { logger } = await import('./lib/logger.js');
    if (isAppError(err)) {
      process.stderr.write(`podgate: ${err.message}\n`);
      if (err.status >= 500) logger.debug({ err }, 'failure detail');
      return err.status >= 400 && err.status < 500 ? 2 : 1;
    }
    logger.error({ err }, 'unexpected failure');
    process.stderr.write(`podgate: unexpected failure: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`podgate: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
