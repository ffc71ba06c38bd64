import { Command } from 'commander';
import type { CliEnv } from './env.js';

type Register = (program: Command, env: CliEnv) => void;

/**
 * Each area registers its own commands; this list is the only place that knows them all. Areas load
 * lazily: `podgate cert list` should not pay for loading express, ssh2 and the Kubernetes client.
 * `summary` is each top-level command's description as its area registers it, so that `podgate --help`
 * (and a mistyped command) lists every command without loading any area; a unit test keeps the two equal.
 */
export const AREAS: {
  summary: Readonly<Record<string, string>>;
  load: () => Promise<{ register: Register }>;
}[] = [
  {
    summary: {
      init: 'create the data dir, the CA and the first admin (password from PODGATE_ADMIN_PASSWORD_FILE or printed once)',
    },
    load: () => import('./commands/init.js'),
  },
  { summary: { user: 'manage people who can sign in' }, load: () => import('./commands/user.js') },
  {
    summary: { group: 'local groups (access rules match them beside single sign-on groups)' },
    load: () => import('./commands/group.js'),
  },
  {
    summary: { access: 'access rules: who may reach which namespaces, Services and ranges' },
    load: () => import('./commands/access.js'),
  },
  {
    summary: {
      cert: 'client certificates and profiles',
      crl: 'print the current CRL (re-signed first when due)',
    },
    load: () => import('./commands/cert.js'),
  },
  {
    summary: { doctor: 'check the config, the CA, the CRL, the network settings and the local openvpn' },
    load: () => import('./commands/doctor.js'),
  },
  { summary: { ca: 'the certificate authority: status, rotation' }, load: () => import('./commands/ca.js') },
  {
    summary: { token: 'API tokens for scripts (Authorization: Bearer)' },
    load: () => import('./commands/token.js'),
  },
  {
    summary: { serve: 'serve the web app (creates the CA and the first admin on first start)' },
    load: () => import('./commands/serve.js'),
  },
  {
    summary: {
      server: 'the OpenVPN server on this host (local mode)',
      sessions:
        'live VPN sessions (from the management interface of `server run`, else every server replica in the cluster)',
    },
    load: () => import('./commands/server.js'),
  },
  {
    summary: {
      k8s: 'the OpenVPN server in Kubernetes (namespace from kubernetes.namespace)',
      agent:
        'apply revocations to a running openvpn (--cluster: from the podgate-crl Secret, in the server pod)',
    },
    load: () => import('./commands/k8s.js'),
  },
  {
    summary: { gateway: 'office gateway host: routes the office LAN into the cluster' },
    load: () => import('./commands/gateway.js'),
  },
  {
    summary: {
      backup:
        'write an encrypted backup of the store: the data dir, or the PostgreSQL database (safe while serve and server run are running)',
      restore:
        'restore a backup into a new or empty data dir, or an empty PostgreSQL database (checks the whole file before writing)',
    },
    load: () => import('./commands/backup.js'),
  },
  {
    summary: { store: 'the database: move a SQLite data dir to PostgreSQL' },
    load: () => import('./commands/store.js'),
  },
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
 * loaded (for `help NAME`, NAME's area). Root help, unknown commands and a missing command load no
 * area: the top-level commands are listed from the summaries. `loadAll` loads every area (tests).
 */
export async function buildProgram(
  env: CliEnv,
  argv: readonly string[] = [],
  extraAreas: Register[] = [],
  loadAll = false,
): Promise<Command> {
  const program = new Command('podgate')
    .description('office-to-cluster OpenVPN gateway manager')
    .option('--config <file>', 'podgate.yaml (default: $PODGATE_CONFIG or built-in defaults)')
    .option('--data-dir <dir>', 'data directory (overrides dataDir)')
    .option('--json', 'machine-readable output for lists')
    .showHelpAfterError();
  const args = argv.slice(2);
  let name = commandName(args);
  if (name === 'help') name = commandName(args.slice(args.indexOf('help') + 1));
  const owner = AREAS.find((a) => name !== undefined && Object.hasOwn(a.summary, name));
  if (loadAll) for (const area of AREAS) (await area.load()).register(program, env);
  else if (owner) (await owner.load()).register(program, env);
  else {
    // listed for help and for commander's "did you mean"; never run (a known name loads its area)
    for (const area of AREAS) {
      for (const [command, description] of Object.entries(area.summary))
        program.command(command).description(description);
    }
  }
  for (const register of extraAreas) register(program, env);
  // exitOverride is not inherited by subcommands created before it was set; set it everywhere.
  const walk = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(walk);
  };
  walk(program);
  return program;
}
