import type { Command } from 'commander';
import { ensureFirstAdmin } from '../../services/bootstrap.js';
import { describeAccessDefaults } from './access.js';
import { withContext, type CliEnv } from '../env.js';

/** `podgate init`: data dir, CA, store, first CRL and the first admin. Safe to run twice. */
export function register(program: Command, env: CliEnv): void {
  program
    .command('init')
    .description(
      'create the data dir, the CA and the first admin (password from PODGATE_ADMIN_PASSWORD_FILE or printed once)',
    )
    .action(async (_opts, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        if (ctx.dataDirNote) env.err(ctx.dataDirNote);
        const admin = await ensureFirstAdmin(ctx, env.env);
        await ctx.server.ensure();
        if (!admin) {
          env.out(`podgate is already initialised in ${ctx.dataDir}`);
          return;
        }
        env.out(`initialised podgate in ${ctx.dataDir}`);
        env.out(`CA: ${ctx.ca.commonName}`);
        if (admin.generatedPassword) {
          env.out(`first admin: ${admin.user.name}`);
          env.out(`password (shown once, store it now): ${admin.generatedPassword}`);
        } else {
          env.out(`first admin: ${admin.user.name} (password from PODGATE_ADMIN_PASSWORD_FILE)`);
        }
        for (const line of await describeAccessDefaults(ctx, admin.access)) env.out(line);
      });
    });
}
