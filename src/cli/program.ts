import { Command } from 'commander';
import type { CliEnv } from './env.js';
import { register as registerInit } from './commands/init.js';
import { register as registerUser } from './commands/user.js';
import { register as registerCert } from './commands/cert.js';
import { register as registerDoctor } from './commands/doctor.js';
import { register as registerGateway } from './commands/gateway.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerServer } from './commands/server.js';
import { register as registerToken } from './commands/token.js';
import { register as registerK8s } from './commands/k8s.js';

/** Each area registers its own commands; this list is the only place that knows them all. */
const AREAS: ((program: Command, env: CliEnv) => void)[] = [registerInit, registerUser, registerCert, registerDoctor, registerGateway, registerServe, registerServer, registerToken, registerK8s];

export function buildProgram(env: CliEnv, extraAreas: ((program: Command, env: CliEnv) => void)[] = []): Command {
  const program = new Command('podgate')
    .description('office-to-cluster OpenVPN gateway manager')
    .option('--config <file>', 'podgate.yaml (default: $PODGATE_CONFIG or built-in defaults)')
    .option('--data-dir <dir>', 'data directory (overrides dataDir)')
    .option('--json', 'machine-readable output for lists')
    .showHelpAfterError()
    .exitOverride();
  for (const register of [...AREAS, ...extraAreas]) register(program, env);
  // exitOverride is not inherited by subcommands created before it was set; set it everywhere.
  const walk = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(walk);
  };
  walk(program);
  return program;
}
