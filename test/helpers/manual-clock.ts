/**
 * A Clock moved by hand, for tests that drive months of timers in milliseconds. Stand-in for the
 * system clock (which cannot be moved on demand); it models what the timers rely on and nothing more:
 * timers fire in due order, each at its due time (now() reads that time while it runs), and a
 * timer's returned promise is awaited before the next one fires, as if each run took no time. It does
 * not model a host suspended mid-run or timers firing late.
 */
import type { Clock, Timer } from '../../src/lib/clock.js';

interface Pending {
  due: number;
  seq: number;
  fn: () => unknown;
}

export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(start: number) {
    this.t = start;
  }

  now(): Date {
    return new Date(this.t);
  }

  after(ms: number, fn: () => unknown): Timer {
    const p: Pending = { due: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.pending.push(p);
    return { cancel: () => (this.pending = this.pending.filter((x) => x !== p)) };
  }

  /** Timers not yet fired. */
  get size(): number {
    return this.pending.length;
  }

  /** Fires, in order, every timer due up to now + ms (including ones they arm), then sets now + ms. */
  async advanceBy(ms: number): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      const next = this.pending
        .filter((p) => p.due <= until)
        .sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.pending = this.pending.filter((p) => p !== next);
      this.t = Math.max(this.t, next.due);
      await next.fn();
      // let work the timer started without awaiting (I/O callbacks, child exits) run before the next one
      await new Promise((r) => setImmediate(r));
    }
    this.t = until;
  }
}
