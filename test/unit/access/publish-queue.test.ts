/**
 * The one path every access-bundle publication takes (`AccessService.changed`/`refresh`): changes that
 * arrive while a publication runs are not lost, and a target that fails is logged and audited, never an
 * unhandled rejection. The publishers here are stand-ins (a list that records, one that throws): a real
 * target (file, Secret) cannot be made to fail on demand at a chosen moment. They model only "publish
 * resolves or rejects"; not a target that holds a higher version.
 */
import assert from 'node:assert/strict';
import type { AccessBundle } from '../../../src/access/types.js';
import type { AppContext } from '../../../src/services/context.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';
import { captureLog } from '../../helpers/log-capture.js';

const tick = () => Promise.resolve();

describe('access: publications go through one queue', function () {
  this.timeout(120_000);
  let t: ReturnType<typeof tempDir>;
  let ctx: AppContext;
  const published: number[] = [];

  beforeEach(async () => {
    t = tempDir();
    ctx = await testContext(t.dir);
    published.length = 0;
    ctx.access.addPublisher({
      name: 'recorder',
      publish: (b: AccessBundle) => {
        published.push(b.version);
        return Promise.resolve();
      },
    });
    await ctx.access.refresh();
  });
  afterEach(async () => {
    await ctx.close();
    t.cleanup();
  });

  it('a change made at any moment of a running publication ends with the newest version published', async () => {
    // Every offset (in microtask turns) from the start of one publication to past its end: the second
    // change lands before, during and right after it, including the turn in which the queue empties.
    for (let k = 0; k < 400; k++) {
      const first = ctx.access.changed();
      for (let i = 0; i < k; i++) await tick();
      await ctx.store.bumpAccessVersion();
      const second = ctx.access.changed();
      await Promise.all([first, second]);
      assert.equal(published.at(-1), await ctx.access.version(), `second change ${k} turns after the first`);
    }
  });

  it('a target that fails after a group change: logged and audited, the caller not rejected, retried next time', async () => {
    let failing = true;
    ctx.access.addPublisher({
      name: 'flaky',
      publish: () => (failing ? Promise.reject(new Error('target unreachable')) : Promise.resolve()),
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const logs = await captureLog(async () => {
        await ctx.groups.create({ actor: 'test', name: 'ops' }); // resolves: the group exists
        await new Promise((r) => setImmediate(r));
      });
      assert.deepEqual(unhandled, []);
      assert.ok(logs.some((l) => l.msg === 'access bundle publish failed' && l.publisher === 'flaky'));
      const audit = await ctx.store.listAudit({ action: 'access.publish' });
      assert.equal(audit.length, 1);
      assert.equal(audit[0]!.target, 'flaky');
      assert.equal(audit[0]!.result, 'error');
      assert.equal(audit[0]!.details.version, await ctx.access.version());
      // the same version failing again is not audited again; once the target is back it gets it
      await ctx.access.changed();
      assert.equal((await ctx.store.listAudit({ action: 'access.publish' })).length, 1);
      failing = false;
      await ctx.access.changed();
      assert.equal(published.at(-1), await ctx.access.version());
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
