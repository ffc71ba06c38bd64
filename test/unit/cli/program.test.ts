/**
 * The command line lists every top-level command from AREAS' summaries without loading the areas
 * (root help stays free of express, ssh2 and the Kubernetes client): the summaries must name exactly the
 * commands each area registers, with the same descriptions, or help would lie.
 */
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { AREAS, buildProgram } from '../../../src/cli/program.js';
import type { CliEnv } from '../../../src/cli/env.js';

// Registration stores the env for the actions and never calls it.
const env = {} as CliEnv;

describe('cli program', () => {
  it('each area registers exactly the commands of its summary, with the same descriptions', async () => {
    for (const area of AREAS) {
      const registered: Record<string, string> = {};
      const program = new Command('podgate');
      (await area.load()).register(program, env);
      for (const c of program.commands) registered[c.name()] = c.description();
      assert.deepEqual(registered, area.summary);
    }
  });

  it('root help lists every command from the summaries, the same as with every area loaded', async () => {
    const stubs = await buildProgram(env, ['node', 'podgate', '--help']);
    const all = await buildProgram(env, ['node', 'podgate', '--help'], [], true);
    const list = (p: Command) => p.commands.map((c) => [c.name(), c.description()]);
    assert.deepEqual(list(stubs), list(all));
    assert.ok(list(stubs).length >= 15);
  });

  it('a command loads only its own area; "help NAME" loads NAME\'s', async () => {
    const names = (p: Command) => p.commands.map((c) => c.name()).sort();
    assert.deepEqual(names(await buildProgram(env, ['node', 'podgate', 'cert', 'list'])), ['cert', 'crl']);
    assert.deepEqual(names(await buildProgram(env, ['node', 'podgate', 'help', 'user'])), ['user']);
    assert.deepEqual(
      names(await buildProgram(env, ['node', 'podgate', '--data-dir', 'x', 'k8s', 'status'])),
      ['agent', 'k8s'],
    );
  });
});
