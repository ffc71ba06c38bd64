import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { setLogLevel } from '../lib/logger.js';
import type { AppContext, ContextDeps } from '../services/context.js';

/** Options every command accepts (declared once on the root program). */
export interface GlobalOpts {
  config?: string;
  dataDir?: string;
  json?: boolean;
}

/** What command modules get from the composition root; tests can swap any part. */
export interface CliEnv {
  loadConfig(opts: GlobalOpts): Config;
  openContext(config: Config, deps?: ContextDeps): Promise<AppContext>;
  /** Publishers and other real dependencies for a context, chosen by the composition root. */
  contextDeps(config: Config, use?: ContextUse): ContextDeps;
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
}

/** What the command will do with its context, so the composition root can get publishers ready early. */
export interface ContextUse {
  /** The command will publish a CRL (revoke, disable): prepare the publishers now. */
  publishSoon?: boolean;
  /** A long-lived process (`serve`): keep publishers ready for every next publish. */
  longLived?: boolean;
}

export function globalOpts(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals() as GlobalOpts;
}

/**
 * Loads the config and opens the context for one command, closing it afterwards.
 * Short-lived commands log at `warn` unless PODGATE_LOG_LEVEL asks otherwise, so their stdout stays readable.
 */
export async function withContext<T>(
  env: CliEnv,
  cmd: Command,
  fn: (ctx: AppContext, opts: GlobalOpts) => Promise<T>,
  options: { quiet?: boolean; publishes?: boolean; readOnly?: boolean } = { quiet: true },
): Promise<T> {
  const opts = globalOpts(cmd);
  const config = env.loadConfig(opts);
  setLogLevel(options.quiet && !env.env.PODGATE_LOG_LEVEL ? 'warn' : config.logLevel);
  const deps = {
    ...env.contextDeps(config, { publishSoon: options.publishes === true }),
    ...(options.readOnly ? { readOnly: true } : {}),
  };
  const ctx = await env.openContext(config, deps);
  try {
    const version = await ctx.access.version();
    const result = await fn(ctx, opts);
    // Whatever the command changed that alters the access bundle (the store's version moved) is
    // published before the process ends; a read-only command publishes nothing.
    if ((await ctx.access.version()) !== version) await ctx.access.changed();
    return result;
  } finally {
    await ctx.clusterObjects?.close?.();
    await ctx.close();
  }
}

/** Plain fixed-width table for list commands. */
export function table(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
}
