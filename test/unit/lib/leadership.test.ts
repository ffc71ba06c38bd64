import assert from 'node:assert/strict';
import { SoleLeadership, whileLeader, LeaderState, type Leadership } from '../../../src/lib/leadership.js';

/** A leadership the test hands over and takes away by hand. */
class ManualLeadership implements Leadership {
  readonly state = new LeaderState();
  isLeader = () => this.state.get();
  onChange = (l: (leader: boolean) => void) => this.state.subscribe(l);
  start = () => Promise.resolve();
  stop = () => Promise.resolve(this.state.set(false));
}

describe('lib: leadership', () => {
  it('whileLeader starts the timers on gaining, stops them on losing, and again on regaining', async () => {
    const l = new ManualLeadership();
    const log: string[] = [];
    const gate = whileLeader(l, () => {
      log.push('start');
      return () => {
        log.push('stop');
      };
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, [], 'not the leader: nothing runs');
    l.state.set(true);
    l.state.set(true); // no change, no second start
    l.state.set(false);
    l.state.set(true);
    await gate.stop();
    l.state.set(true); // after stop: nothing starts any more
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['start', 'stop', 'start', 'stop']);
  });

  it('whileLeader on a replica that leads already starts at once; stop waits for an async stop', async () => {
    const sole = new SoleLeadership();
    await sole.start();
    let stopped = false;
    const gate = whileLeader(sole, () => async () => {
      await new Promise((r) => setTimeout(r, 20));
      stopped = true;
    });
    await gate.stop();
    assert.equal(stopped, true);
  });

  it('a listener that throws does not keep the others from hearing about the change', () => {
    const s = new LeaderState();
    const heard: boolean[] = [];
    s.subscribe(() => {
      throw new Error('listener bug');
    });
    s.subscribe((x) => heard.push(x));
    s.set(true);
    assert.deepEqual(heard, [true]);
  });
});
