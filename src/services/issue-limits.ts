import { AppError, Conflict } from '../lib/errors.js';

const HOUR = 3_600_000;

/** 429: the per-user issuance rate was used up. */
export class TooManyIssues extends AppError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, 'rate_limited', message, { retryAfterSeconds });
  }
}

/** 503: every key-generation slot and queue place is taken; the request changed nothing. */
export class IssueQueueFull extends AppError {
  constructor() {
    super(503, 'busy', 'too many certificates are being made right now; try again in a minute', {
      retryAfterSeconds: 60,
    });
  }
}

export interface IssueLimitsConfig {
  /** Valid client certificates one user may hold. */
  maxValidPerUser: number;
  /** Self-service issues per user in a sliding hour. */
  issuesPerHour: number;
  /** Key generations at once in this process. */
  keygenConcurrency: number;
  /** Self-service requests that may wait for a key-generation slot. */
  keygenQueue: number;
}

/**
 * Keeps one user from flooding the CA (RSA-3072 key generation is ~0.5 s of a core each) and keeps
 * key generation from starving everything else on the libuv pool, sign-in's argon2 in particular.
 *
 * - A sliding-hour count per user, taken when a request is admitted (before any work), so parallel
 *   requests cannot all slip through a check that only counts finished ones.
 * - In-flight issues per user, so "valid devices + in flight" is what the device maximum is checked
 *   against (the store transaction checks it again for other processes).
 * - A queue in front of key generation: `keygenConcurrency` run, self-service requests beyond
 *   `keygenQueue` waiting are refused with 503. Trusted callers (CLI) wait without a bound.
 *
 * State is per process, like the CLI's single-shot runs it does not need to be shared.
 */
export class IssueLimits {
  private readonly recent = new Map<number, number[]>();
  private readonly inflight = new Map<number, number>();
  private running = 0;
  private readonly waiting: { bounded: boolean; go: () => void }[] = [];

  constructor(
    readonly config: IssueLimitsConfig,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /**
   * Admits one self-service issue for `ownerId` holding `validNow` valid devices, or throws 409/429.
   * A renewal replaces a device instead of adding one: it is rate-limited like an issue but never
   * refused for the device maximum, and not counted in flight against it.
   * The returned release must be called once the request is finished, with 'failed' when no
   * certificate was made: a failed issue does not use up one of the hour's issues.
   */
  admit(
    ownerId: number,
    owner: string,
    validNow: number,
    o: { renewal?: boolean } = {},
  ): (outcome?: 'done' | 'failed') => void {
    const { maxValidPerUser, issuesPerHour } = this.config;
    const renewal = o.renewal === true;
    const inflight = this.inflight.get(ownerId) ?? 0;
    if (!renewal && validNow + inflight >= maxValidPerUser) {
      throw new Conflict(
        `owner: user '${owner}' already has ${maxValidPerUser} valid devices (devices.maxValidPerUser); revoke one first`,
        'owner',
      );
    }
    const t = this.now();
    const times = (this.recent.get(ownerId) ?? []).filter((x) => t - x < HOUR);
    if (times.length >= issuesPerHour) {
      this.recent.set(ownerId, times);
      // The next slot opens when the oldest issue in the window is an hour old.
      const seconds = Math.ceil((times[0]! + HOUR - t) / 1000);
      throw new TooManyIssues(
        `owner: user '${owner}' made ${issuesPerHour} certificates in the last hour (devices.issuesPerHour); try again in ${Math.ceil(seconds / 60)} minutes`,
        seconds,
      );
    }
    times.push(t);
    this.recent.set(ownerId, times);
    if (!renewal) this.inflight.set(ownerId, inflight + 1);
    let released = false;
    return (outcome = 'done') => {
      if (released) return;
      released = true;
      if (outcome === 'failed') this.forget(ownerId, t);
      if (renewal) return;
      const n = (this.inflight.get(ownerId) ?? 1) - 1;
      if (n > 0) this.inflight.set(ownerId, n);
      else this.inflight.delete(ownerId);
    };
  }

  /** Removes one counted issue at `t` again (an issue that failed made no certificate). */
  private forget(ownerId: number, t: number): void {
    const times = this.recent.get(ownerId) ?? [];
    const i = times.indexOf(t);
    if (i >= 0) times.splice(i, 1);
    if (times.length === 0) this.recent.delete(ownerId);
  }

  /** Runs `fn` (key generation) in a slot; `bounded` callers are refused with 503 when the queue is full. */
  async keygen<T>(bounded: boolean, fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.config.keygenConcurrency) {
      const queued = this.waiting.filter((w) => w.bounded).length;
      if (bounded && queued >= this.config.keygenQueue) throw new IssueQueueFull();
      // The slot is handed over by the finishing run, so `running` stays counted for us.
      await new Promise<void>((go) => this.waiting.push({ bounded, go }));
    } else {
      this.running++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next.go();
      else this.running--;
    }
  }

  /** For benchmarks and status: key generations running and waiting. */
  load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
