import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { BadRequest } from '../../lib/errors.js';
import { table, withContext, type CliEnv } from '../env.js';
import { registerUserSync } from './user-sync.js';

function readPasswordFile(file: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch {
    throw new BadRequest(`--password-file ${file} cannot be read`, 'password-file');
  }
}

/** `podgate user add|list|passwd|disable|enable`. Passwords arrive in files, never in argv. */
export function register(program: Command, env: CliEnv): void {
  const user = program.command('user').description('manage people who can sign in');

  user
    .command('add <name>')
    .description('create a user (password from --password-file, or generated and printed once)')
    .option('--admin', 'make the user an admin')
    .option('--password-file <file>', 'file holding the password')
    .action(async (name: string, o: { admin?: boolean; passwordFile?: string }, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        const password = o.passwordFile
          ? readPasswordFile(o.passwordFile)
          : randomBytes(18).toString('base64url');
        const u = await ctx.users.create({ actor: 'cli', name, role: o.admin ? 'admin' : 'user', password });
        env.out(`created ${u.role} ${u.name}`);
        if (!o.passwordFile) env.out(`password (shown once): ${password}`);
      });
    });

  user
    .command('list')
    .description('list users')
    .action(async (_o, cmd: Command) => {
      await withContext(
        env,
        cmd,
        async (ctx, g) => {
          const users = await ctx.users.list();
          if (g.json) {
            env.out(
              JSON.stringify(
                users.map(({ passwordHash: _h, ...u }) => u),
                null,
                2,
              ),
            );
            return;
          }
          env.out(
            table([
              ['NAME', 'ROLE', 'STATUS', 'CREATED'],
              ...users.map((u) => [
                u.name,
                u.role,
                u.disabled ? 'disabled' : 'active',
                u.createdAt.toISOString(),
              ]),
            ]),
          );
        },
        { quiet: true, readOnly: true },
      );
    });

  user
    .command('passwd <name>')
    .description('set a password (from --password-file, or generated and printed once)')
    .option('--password-file <file>', 'file holding the password')
    .action(async (name: string, o: { passwordFile?: string }, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        const password = o.passwordFile
          ? readPasswordFile(o.passwordFile)
          : randomBytes(18).toString('base64url');
        await ctx.users.setPassword({ actor: 'cli', name, password });
        env.out(`password of ${name} changed`);
        if (!o.passwordFile) env.out(`password (shown once): ${password}`);
      });
    });

  user
    .command('disable <name>')
    .description('disable a user and revoke all their certificates')
    .action(async (name: string, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        const { revoked } = await ctx.users.disable({ actor: 'cli', name });
        env.out(`disabled ${name}; revoked ${revoked.length} certificate(s)`);
      });
    });

  registerUserSync(user, env);

  user
    .command('enable <name>')
    .description('enable a disabled user (their revoked certificates stay revoked)')
    .action(async (name: string, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        await ctx.users.enable({ actor: 'cli', name });
        env.out(`enabled ${name}`);
      });
    });
}
