import { logger } from './logger.js';

const log = logger.child({ module: 'leadership' });

/**
 * Which replica runs the timers (daily CRL re-sign, server-material sync, sign-in sync, scheduled
 * backups, expiry sweeps). Several `serve` processes on one PostgreSQL must not each run them: one
 * holds the leadership, the others wait and take over when it is lost.
 *
 * Implementations: `SoleLeadership` (SQLite: one process, always the leader), the PostgreSQL advisory
 * lock (store/pg/advisory-leadership.ts, outside Kubernetes) and the coordination.k8s.io Lease
 * (cluster/lease-leadership.ts). An implementation steps down (isLeader false, listeners told) as soon
 * as it can no longer be sure it holds the leadership, before another replica can get it: it is better
 * to have no leader for a moment than two.
 */
export interface Leadership {
  /** Whether this replica holds the leadership now. */
  isLeader(): boolean;
  /** Called with true on gaining and false on losing the leadership; returns an unsubscribe function. */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Starts competing (idempotent). Resolves after the first attempt, won or not. */
  start(): Promise<void>;
  /** Stops competing and gives the leadership up at once (not waiting for it to expire). */
  stop(): Promise<void>;
}

/** Listener bookkeeping shared by the implementations: `set` tells listeners only on a change. */
export class LeaderState {
  private leader = false;
  private readonly listeners = new Set<(leader: boolean) => void>();

  get(): boolean {
    return this.leader;
  }

  set(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    for (const l of [...this.listeners]) {
      try {
        l(leader);
      } catch {
        /* a listener's failure is its own; the others still hear about the change */
      }
    }
  }

  subscribe(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** The only process there is (SQLite mode): the leader from start() until stop(). */
export class SoleLeadership implements Leadership {
  private readonly state = new LeaderState();

  isLeader(): boolean {
    return this.state.get();
  }
  onChange(listener: (leader: boolean) => void): () => void {
    return this.state.subscribe(listener);
  }
  start(): Promise<void> {
    this.state.set(true);
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.state.set(false);
    return Promise.resolve();
  }
}

/**
 * Runs what `start` starts only while this replica leads: started on gaining the leadership (at once
 * when it leads already), stopped on losing it, and stopped for good by the returned `stop`. `start`
 * returns its own stop function (timers cancelled, running work awaited when it returns a Promise).
 */
export function whileLeader(
  leadership: Leadership,
  start: () => () => void | Promise<void>,
): { stop(): Promise<void> } {
  let stopRunning: (() => void | Promise<void>) | undefined;
  let wanted = false;
  // starts and stops run in order: a start after a loss waits until the previous stop has finished
  let queue: Promise<void> = Promise.resolve();
  const apply = (leader: boolean): void => {
    if (leader === wanted) return;
    wanted = leader;
    queue = queue
      .then(async () => {
        if (leader && !stopRunning) stopRunning = start();
        else if (!leader && stopRunning) {
          const s = stopRunning;
          stopRunning = undefined;
          await s();
        }
      })
      // the queue must go on, but a timer set that failed to start or stop is worth a line in the log
      .catch((err: unknown) => log.error({ err, leader }, 'leader timers failed to change'));
  };
  const unsubscribe = leadership.onChange(apply);
  apply(leadership.isLeader());
  return {
    async stop() {
      unsubscribe();
      apply(false);
      await queue;
    },
  };
}
