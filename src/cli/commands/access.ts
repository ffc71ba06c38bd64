import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { AccessMode, AccessRule } from '../../access/types.js';
import { BadRequest } from '../../lib/errors.js';
import type { RulesDiff } from '../../services/access.js';
import type { AppContext } from '../../services/context.js';
import { withContext, type CliEnv } from '../env.js';

/** What `init` (and the first `serve`) say about the access defaults they wrote. */
export async function describeAccessDefaults(
  ctx: AppContext,
  written: { mode?: AccessMode; rule?: AccessRule },
): Promise<string[]> {
  const lines: string[] = [];
  const { mode, source } = await ctx.access.mode();
  if (written.mode)
    lines.push(
      `access.mode: ${mode}${source === 'config' ? ' (from the config)' : ''}: devices reach only cluster DNS and what rules allow`,
    );
  if (written.rule)
    lines.push(
      `access rule ${written.rule.name} written: group admins (every admin) reaches everything (podgate access export shows it)`,
    );
  return lines;
}

export function diffLines(d: RulesDiff): string[] {
  return [
    ...d.create.map((n) => `+ create ${n}`),
    ...d.update.map((n) => `~ update ${n}`),
    ...d.delete.map((n) => `- delete ${n}`),
    `${d.create.length} to create, ${d.update.length} to update, ${d.delete.length} to delete, ${d.unchanged.length} unchanged`,
  ];
}

function readRulesFile(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch {
    throw new BadRequest(`-f ${file} cannot be read`, 'file');
  }
}

/** `podgate access apply|export|check|mode`. */
export function register(program: Command, env: CliEnv): void {
  const access = program
    .command('access')
    .description('access rules: who may reach which namespaces, Services and ranges');

  access
    .command('apply')
    .description('make the stored rules match a rules.yaml (create/update/delete, all or nothing)')
    .requiredOption('-f, --file <file>', 'rules.yaml ("-" reads stdin)')
    .option('--dry-run', 'print the difference and change nothing')
    .action(async (o: { file: string; dryRun?: boolean }, cmd: Command) => {
      const text = readRulesFile(o.file);
      await withContext(env, cmd, async (ctx, g) => {
        const input = ctx.access.parseYaml(text);
        const diff = await ctx.access.apply({ actor: 'cli', input, dryRun: o.dryRun === true });
        if (g.json) {
          env.out(JSON.stringify({ dryRun: o.dryRun === true, ...diff }, null, 2));
          return;
        }
        for (const line of diffLines(diff)) env.out(line);
        if (o.dryRun) env.out('dry run: nothing changed');
      });
    });

  access
    .command('export')
    .description('print the stored rules as YAML that `access apply` accepts')
    .action(async (_o, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        env.out(ctx.access.exportYaml());
      });
    });

  access
    .command('check <user> <destination>')
    .description(
      'may USER reach DESTINATION (ns/NS, svc/NS/NAME[:PORT[/PROTO]], IP[:PORT/PROTO], [IPV6]:PORT/PROTO)? names the deciding rule',
    )
    .action(async (user: string, destination: string, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const a = await ctx.accessQueries.check(user, destination, ctx.clusterObjects);
        if (g.json) {
          env.out(JSON.stringify(a, null, 2));
          return;
        }
        env.out(
          a.rule
            ? `${a.decision} ${a.user} -> ${a.destination}: rule ${a.rule} (${a.covers}; ${a.limits})`
            : `${a.decision} ${a.user} -> ${a.destination}: no rule allows it`,
        );
        env.out(
          a.evaluatedWith === 'cluster'
            ? "selectors evaluated with the cluster's labels"
            : 'evaluated by names only: no cluster configured, selectors not evaluated',
        );
        for (const n of a.notes) env.out(`note: ${n}`);
      });
    });

  access
    .command('mode [mode]')
    .description('show the access mode, or record open|enforce in the data dir (the config can override it)')
    .action(async (mode: string | undefined, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        if (mode !== undefined) await ctx.access.setMode({ actor: 'cli', mode });
        const m = await ctx.access.mode();
        env.out(`access.mode: ${m.mode} (${m.source})`);
      });
    });
}
