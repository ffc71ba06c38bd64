import type { Command } from 'commander';
import { BadRequest } from '../../lib/errors.js';
import { table, withContext, type CliEnv } from '../env.js';

/**
 * `podgate user sync`: the single sign-on leaver check on demand (the same one `serve` runs daily).
 * Exit 1 when the provider could not be asked about some users (nothing was changed for them).
 */
export function registerUserSync(user: Command, env: CliEnv): void {
  user
    .command('sync')
    .description('ask the single sign-on provider about every SSO user; disable leavers, apply groups')
    .action(async (_o, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const { openOidc } = await import('../../services/oidc.js'); // openid-client: this command only
        const oidc = openOidc(ctx);
        if (!oidc) throw new BadRequest('auth.oidc is not configured: there is nothing to sync', 'auth.oidc');
        const entries = await oidc.sync('cli');
        if (g.json) env.out(JSON.stringify(entries, null, 2));
        else if (entries.length === 0) env.out('no single sign-on users yet');
        else
          env.out(
            table([['USER', 'RESULT', 'DETAIL'], ...entries.map((e) => [e.user, e.outcome, e.detail ?? ''])]),
          );
        if (entries.some((e) => e.outcome === 'error')) process.exitCode = 1;
      });
    });
}
