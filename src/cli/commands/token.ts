import type { Command } from 'commander';
import { BadRequest, NotFound } from '../../lib/errors.js';
import { validateName } from '../../lib/names.js';
import { TokenService } from '../../services/tokens.js';
import { table, withContext, type CliEnv } from '../env.js';

export { newApiToken } from '../../services/tokens.js';

/**
 * `podgate token create USER [--name N]` prints a new API token once (only its sha256 is stored);
 * `token list USER`, `token delete ID`. Tokens are sent as `Authorization: Bearer <token>`.
 */
export function register(program: Command, env: CliEnv): void {
  const token = program.command('token').description('API tokens for scripts (Authorization: Bearer)');

  token
    .command('create <user>')
    .description('create an API token for USER; it is printed once and stored only as a hash')
    .option('--name <name>', 'a label for the token', 'cli')
    .option('--days <days>', 'days until the token expires (default: web.apiTokenDays, 90)')
    .action(async (userName: string, o: { name: string; days?: string }, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        validateName('user', userName);
        const label = validateName('name', o.name);
        const days = o.days === undefined ? undefined : Number(o.days);
        if (days !== undefined && !/^\d{1,4}$/.test(o.days!))
          throw new BadRequest('--days must be a whole number of days', 'days');
        const user = await ctx.store.getUserByName(userName);
        if (!user) throw new NotFound(`user '${userName}' does not exist`);
        const tokens = new TokenService({
          store: ctx.store,
          defaultDays: ctx.config.web.apiTokenDays,
          now: ctx.now,
        });
        const { token: created, secret } = await tokens.create({ actor: 'cli', owner: user, name: label, days });
        const expires = created.expiresAt!.toISOString();
        if (g.json) {
          env.out(
            JSON.stringify(
              { id: created.id, user: user.name, name: label, expiresAt: expires, token: secret },
              null,
              2,
            ),
          );
          return;
        }
        env.out(`token ${created.id} for ${user.name}, expires ${expires} (shown once, store it now):`);
        env.out(secret);
      });
    });

  token
    .command('list <user>')
    .description("list a user's API tokens (never the secrets)")
    .action(async (userName: string, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const user = await ctx.store.getUserByName(validateName('user', userName));
        if (!user) throw new NotFound(`user '${userName}' does not exist`);
        const tokens = ctx.store.listTokens(user.id);
        if (g.json) {
          env.out(JSON.stringify(tokens, null, 2));
          return;
        }
        env.out(
          table([
            ['ID', 'NAME', 'CREATED', 'LAST USED', 'EXPIRES'],
            ...(await tokens).map((t) => [
              String(t.id),
              t.name,
              t.createdAt.toISOString(),
              t.lastUsedAt?.toISOString() ?? 'never',
              t.expiresAt?.toISOString() ?? 'never',
            ]),
          ]),
        );
      });
    });

  token
    .command('delete <id>')
    .description('delete an API token by id')
    .action(async (id: string, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        const n = Number(id);
        if (!Number.isInteger(n) || n < 1) throw new NotFound(`token '${id}' does not exist`);
        await ctx.store.transaction(async (tx) => {
          await tx.deleteToken(n);
          await tx.appendAudit({
            actor: 'cli',
            action: 'token.delete',
            target: String(n),
            result: 'ok',
            details: {},
          });
        });
        env.out(`deleted token ${n}`);
      });
    });
}
