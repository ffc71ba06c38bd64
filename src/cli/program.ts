import { Command } from 'commander';
import type { CliEnv } from './env.js';

type Register = (program: Command, env: CliEnv) => void;

/**
 * Each area registers its own commands; this list is the only place that knows them all. Areas load
 * lazily: `podgate cert list` should not pay for loading express, ssh2 and the Kubernetes client.
 */
const AREAS: { commands: readonly string[]; load: () => Promise<{ register: Register }> }[] = [
  { commands: ['init'], load: () => import('./commands/init.js') },
  { commands: ['user'], load: () => import('./commands/user.js') },
  { commands: ['group'], load: () => import('./commands/group.js') },
  { commands: ['access'], load: () => import('./commands/access.js') },
  { commands: ['cert', 'crl'], load: () => import('./commands/cert.js') },
  { commands: ['doctor'], load: () => import('./commands/doctor.js') },
  { commands: ['ca'], load: () => import('./commands/ca.js') },
  { commands: ['token'], load: () => import('./commands/token.js') },
  { commands: ['serve'], load: () => import('./commands/serve.js') },
  { commands: ['server', 'sessions'], load: () => import('./commands/server.js') },
  { commands: ['k8s', 'agent'], load: () => import('./commands/k8s.js') },
  { commands: ['gateway'], load: () => import('./commands/gateway.js') },
  { commands: ['backup', 'restore'], load: () => import('./commands/backup.js') },
];

/** Global options that take a value, so their values are not mistaken for the command name. */
const VALUE_OPTIONS = new Set(['--config', '--data-dir']);

/** The first word of argv (after node and the script) that is not an option or an option's value. */
export function commandName(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * Builds the command line for `argv` (process.argv form). Only the area that owns the command is
 * loaded; help, unknown commands and a missing command load them all so the usage text is complete.
 */
export async function buildProgram(
  env: CliEnv,
  argv: readonly string[] = [],
  extraAreas: Register[] = [],
): Promise<Command> {
  const program = new Command('podgate')
    .description('office-to-cluster OpenVPN gateway manager')
    .option('--config <file>', 'podgate.yaml (default: $PODGATE_CONFIG or built-in defaults)')
    .option('--data-dir <dir>', 'data directory (overrides dataDir)')
    .option('--json', 'machine-readable output for lists')
    .showHelpAfterError();
  const name = commandName(argv.slice(2));
  const owner = AREAS.find((a) => name !== undefined && a.commands.includes(name));
  const areas = owner ? [owner] : AREAS;
  for (const area of areas) (await area.load()).register(program, env);
  for (const register of extraAreas) register(program, env);
  // exitOverride is not inherited by subcommands created before it was set; set it everywhere.
  const walk = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(walk);
  };
  walk(program);
  return program;
}
