/**
 * `serve` starts the work that writes in the background (the cluster watches: agent status → audit
 * rows, server material → Secret and Deployment) on the leader only. Two real `serve` commands run in
 * this process on one PostgreSQL database (advisory-lock leadership) with web deps that record when
 * that work starts and stops, where the Kubernetes watches would be.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../src/cli/program.js';
import type { CliEnv } from '../../../src/cli/env.js';
import { loadConfig } from '../../../src/config/load.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import { openContext, type AppContext } from '../../../src/services/context.js';
import { stopInProcessServe } from '../../helpers/cli.js';
import { sharedPostgres } from '../../helpers/pg-store.js';

describe('serve x2 on one PostgreSQL: background work that writes runs on the leader only', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-leader-work-'));
    setLogLevel('error');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('two replicas: the watches start once, on the leader, and stop when it stops', async () => {
    const pg = await sharedPostgres();
    const database = await pg.createDatabase('leaderwork');
    writeFileSync(join(dir, 'ca-passphrase'), 'leader-work-shared-passphrase\n', { mode: 0o600 });
    const events: string[] = [];
    const sigtermBefore = process.listeners('SIGTERM');
    const running: Promise<unknown>[] = [];
    const start = async (name: string) => {
      const out: string[] = [];
      const env: CliEnv & { webDeps: (config: unknown, ctx: AppContext) => Promise<object> } = {
        env: {},
        loadConfig: () =>
          loadConfig({
            env: {},
            overrides: {
              dataDir: join(dir, name),
              'store.url': pg.url(database),
              'store.passwordFile': pg.passwordFile,
              'store.leaseSeconds': 5,
              'ca.passphraseFile': join(dir, 'ca-passphrase'),
              'ca.keyType': 'ec-p384',
              logLevel: 'error',
              'vpn.endpoints': ['172.18.12.21'],
              'vpn.routes.pods': ['10.244.0.0/16'],
            },
          }),
        openContext,
        contextDeps: () => ({}),
        out: (t) => out.push(t),
        err: () => undefined,
        webDeps: (_config: unknown, ctx: AppContext) =>
          Promise.resolve({
            leaderWork: () => {
              events.push(`start ${name}`);
              // like a watch whose sync is still writing when serve stops: the store must stay open
              // until it has finished (a second later, well after serve would otherwise have closed it)
              const stop = async () => {
                events.push(`stop ${name}`);
                await new Promise((r) => setTimeout(r, 1000));
                await ctx.store.getSetting('leader-work').then(
                  () => events.push(`stopped ${name}`),
                  (err: unknown) => events.push(`stopped ${name} on a closed store: ${String(err)}`),
                );
              };
              return [{ stop }];
            },
          }),
      };
      const argv = ['node', 'podgate', 'serve', '--host', '127.0.0.1', '--port', '0'];
      running.push((await buildProgram(env, argv)).parseAsync(argv));
      for (let i = 0; i < 400 && !out.some((l) => l.startsWith('podgate web app on')); i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.ok(
        out.some((l) => l.startsWith('podgate web app on')),
        `${name}: ${out.join('\n')}`,
      );
    };
    try {
      await start('a'); // first alone: it creates the first admin
      await start('b');
      // the second replica's attempt at the lock was refused; give it a few checks to be sure
      await new Promise((r) => setTimeout(r, 3000));
      assert.deepEqual(events, ['start a']);
    } finally {
      stopInProcessServe(sigtermBefore);
      await Promise.all(running);
    }
    // stopping both: the leader's work stopped; the other's never started (it may have taken over
    // for a moment while the first was stopping: then its work started and stopped too)
    assert.equal(events[0], 'start a');
    assert.ok(events.includes('stop a'), events.join(', '));
    assert.ok(events.includes('stopped a'), events.join(', '));
    assert.equal(
      events.filter((e) => e.startsWith('start')).length,
      events.filter((e) => e.startsWith('stop ')).length,
      events.join(', '),
    );
  });
});
