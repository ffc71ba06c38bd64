#!/usr/bin/env node
import { CommanderError } from 'commander';
import { isAppError } from './lib/errors.js';
import { logger } from './lib/logger.js';
import { buildProgram } from './cli/program.js';
import { realCliEnv } from './main.js';

/** Exit codes, the same for every command: 0 ok, 1 failure, 2 bad usage or bad input (nothing changed). */
async function main(argv: string[]): Promise<number> {
  const env = realCliEnv();
  const program = await buildProgram(env, argv);
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
