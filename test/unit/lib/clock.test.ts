/**
 * lib/clock: delays past setTimeout's 2^31-1 ms limit are waited out in chunks (Node would clamp them
 * to 1 ms and fire at once), and repeat() re-arms only after a run has settled.
 */
import assert from 'node:assert/strict';
import { longTimeout, MAX_TIMEOUT_MS, repeat } from '../../../src/lib/clock.js';
import { ManualClock } from '../../helpers/manual-clock.js';

describe('lib/clock', () => {
  it('longTimeout: a delay past 2^31-1 ms does not fire at once (plain setTimeout would)', async () => {
    let fired = 0;
    const t = longTimeout(() => (fired += 1), MAX_TIMEOUT_MS + 60_000);
    await new Promise((r) => setTimeout(r, 150));
    t.cancel();
    assert.equal(fired, 0);
  });

  it('longTimeout: a short delay fires once; cancel() stops one not yet fired', async () => {
    let fired = 0;
    longTimeout(() => (fired += 1), 5);
    const cancelled = longTimeout(() => (fired += 100), 5);
    cancelled.cancel();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(fired, 1);
  });

  it('repeat on a manual clock: 40-day period, runs on time, never two at once, errors do not stop it', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const DAY = 86_400_000;
    const runs: number[] = [];
    const errors: unknown[] = [];
    const t = repeat(
      clock,
      40 * DAY,
      async () => {
        runs.push(clock.now().getTime());
        await new Promise((r) => setImmediate(r));
        if (runs.length === 2) throw new Error('boom');
      },
      { firstMs: DAY, onError: (e) => errors.push(e) },
    );
    await clock.advanceBy(200 * DAY);
    t.cancel();
    await clock.advanceBy(100 * DAY);
    const start = Date.parse('2026-01-01T00:00:00Z');
    assert.deepEqual(
      runs.map((r) => (r - start) / DAY),
      [1, 41, 81, 121, 161],
    );
    assert.equal(errors.length, 1);
  });
});
