import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { NotFound } from '../../lib/errors.js';
import { validateName } from '../../lib/names.js';
import { hashToken } from '../../web/auth.js';
import { table, withContext, type CliEnv } from '../env.js';

/** A new API token: 32 random bytes, with a prefix that secret scanners and people recognise. */
export function newApiToken(): string {
  return `pgt_${randomBytes(32).toString('base64url')}`;
}

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
    .action(async (userName: string, o: { name: string }, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        validateName('user', userName);
        const label = validateName('name', o.name);
        const user = ctx.store.getUserByName(userName);
        if (!user) throw new NotFound(`user '${userName}' does not exist`);
        const secret = newApiToken();
        const created = ctx.store.transaction(() => {
          const t = ctx.store.createToken({ userId: user.id, name: label, tokenHash: hashToken(secret) });
          ctx.store.appendAudit({
            actor: 'cli',
            action: 'token.create',
            target: user.name,
            result: 'ok',
            details: { tokenId: t.id, name: label },
          });
          return t;
        });
        if (g.json) {
          env.out(JSON.stringify({ id: created.id, user: user.name, name: label, token: secret }, null, 2));
          return;
        }
        env.out(`token ${created.id} for ${user.name} (shown once, store it now):`);
        env.out(secret);
      });
    });

  token
    .command('list <user>')
    .description("list a user's API tokens (never the secrets)")
    .action(async (userName: string, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const user = ctx.store.getUserByName(validateName('user', userName));
        if (!user) throw new NotFound(`user '${userName}' does not exist`);
        const tokens = ctx.store.listTokens(user.id);
        if (g.json) {
          env.out(JSON.stringify(tokens, null, 2));
          return;
        }
        env.out(
          table([
            ['ID', 'NAME', 'CREATED', 'LAST USED'],
            ...tokens.map((t) => [
              String(t.id),
              t.name,
              t.createdAt.toISOString(),
              t.lastUsedAt?.toISOString() ?? 'never',
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
        ctx.store.transaction(() => {
          ctx.store.deleteToken(n);
          ctx.store.appendAudit({
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
