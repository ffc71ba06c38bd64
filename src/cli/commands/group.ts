import type { Command } from 'commander';
import { table, withContext, type CliEnv } from '../env.js';

/** `podgate group add|list|remove` and `group member add|remove`: local groups for access rules. */
export function register(program: Command, env: CliEnv): void {
  const group = program
    .command('group')
    .description('local groups (access rules match them beside single sign-on groups)');

  group
    .command('add <name>')
    .description('create a local group')
    .option('--description <text>', 'what the group is for')
    .action(async (name: string, o: { description?: string }, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        const g = await ctx.groups.create({ actor: 'cli', name, description: o.description });
        env.out(`created group ${g.name}`);
      });
    });

  group
    .command('list')
    .description('list local groups and their members')
    .action(async (_o, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const groups = ctx.groups.list();
        if (g.json) {
          env.out(JSON.stringify(groups, null, 2));
          return;
        }
        env.out(
          table([
            ['NAME', 'MEMBERS', 'DESCRIPTION'],
            ...(await groups).map((x) => [x.name, x.members.join(',') || '-', x.description]),
          ]),
        );
      });
    });

  group
    .command('remove <name>')
    .description('delete a local group (its memberships go with it)')
    .action(async (name: string, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        await ctx.groups.remove({ actor: 'cli', name });
        env.out(`removed group ${name}`);
      });
    });

  const member = group.command('member').description('group membership');
  member
    .command('add <group> <user>')
    .description('add a user to a local group')
    .action(async (name: string, user: string, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        await ctx.groups.addMember({ actor: 'cli', group: name, user });
        env.out(`added ${user} to ${name}`);
      });
    });
  member
    .command('remove <group> <user>')
    .description('remove a user from a local group')
    .action(async (name: string, user: string, _o, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        await ctx.groups.removeMember({ actor: 'cli', group: name, user });
        env.out(`removed ${user} from ${name}`);
      });
    });
}
