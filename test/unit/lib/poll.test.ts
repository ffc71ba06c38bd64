import assert from 'node:assert/strict';
import { pollEvery } from '../../../src/lib/poll.js';

describe('lib: pollEvery', () => {
  it('stop waits for the tick that is running, and no tick starts after it', async () => {
    let ticks = 0;
    let release!: () => void;
    let started!: () => void;
    const first = new Promise<void>((r) => (started = r));
    const poll = pollEvery(
      5,
      () => {
        ticks += 1;
        started();
        return new Promise<void>((r) => (release = r));
      },
      () => undefined,
    );
    await first;
    let stopped = false;
    const stopping = poll.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(stopped, false, 'stop resolved while the tick was still running');
    assert.equal(ticks, 1, 'a second tick started beside the running one');
    release();
    await stopping;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(ticks, 1, 'a tick started after stop');
  });

  it('a failing tick goes to onError and the next one still runs', async () => {
    const errors: unknown[] = [];
    let ticks = 0;
    let twice!: () => void;
    const second = new Promise<void>((r) => (twice = r));
    const poll = pollEvery(
      5,
      () => {
        ticks += 1;
        if (ticks === 2) twice();
        return Promise.reject(new Error(`tick ${ticks}`));
      },
      (err) => errors.push(err),
    );
    await second;
    await poll.stop();
    assert.ok(errors.length >= 1);
    assert.match(String(errors[0]), /tick 1/);
  });
});
