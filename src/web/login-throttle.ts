import { TooManyRequests } from '../lib/errors.js';

/**
 * Sign-in throttle, in memory (a restart forgetting the counters is acceptable for a throttle). With
 * several replicas on PostgreSQL the same budgets are also counted in the database
 * (shared-login-gate.ts), so that N replicas do not allow N times the attempts.
 *
 * Every attempt is counted the moment it arrives, before the password hash is computed: `begin()`
 * reserves a slot synchronously, so a burst of parallel guesses cannot all pass the check while the
 * first ones are still hashing. At most `perAccount` attempts per account and `perIp` per client
 * address are evaluated in a window, however many arrive at once; the rest get 429 without costing
 * any argon2 time.
 *
 * Past the budget there is no hard lock: one more attempt is allowed after a delay that doubles with
 * each further failure (`baseDelayMs`, 2×, 4×, … at most the window), so five wrong passwords delay
 * an account by seconds, not a quarter of an hour. And an address from which the account signed in
 * successfully before ("known address") is counted on its own: someone guessing the admin's password
 * from elsewhere cannot keep the admin out of their usual address.
 */
export interface ThrottleLimits {
  perAccount: number;
  perIp: number;
  windowMs: number;
  /** Delay before the first attempt past a budget; doubles with each further failure. */
  baseDelayMs: number;
  /** How long a successful sign-in makes its address "known" for that account. */
  knownAddressMs: number;
}

export const DEFAULT_THROTTLE: ThrottleLimits = {
  perAccount: 5,
  perIp: 20,
  windowMs: 15 * 60_000,
  baseDelayMs: 30_000,
  knownAddressMs: 30 * 86_400_000,
};

interface Counter {
  failures: number;
  /** Successful attempts that still count against an account-wide budget (see `begin`). */
  spent: number;
  inFlight: number;
  resetAt: number;
  lastFailureAt: number;
}

/** One sign-in attempt in progress: end it with `fail()`, `succeed()` or `cancel()`, exactly once. */
export interface Attempt {
  fail(): void;
  succeed(): void;
  /** Never evaluated (refused by the replicas' shared counters): counts neither way. */
  cancel(): void;
}

const MAX_KEYS = 50_000;

export class LoginThrottle {
  private readonly counters = new Map<string, Counter>();
  /** `account|ip` → expiry of the "known address" mark. */
  private readonly known = new Map<string, number>();
  private failedTotal = 0;

  constructor(
    private readonly limits: ThrottleLimits,
    private readonly now: () => number | Date,
  ) {}

  private t(): number {
    const v = this.now();
    return typeof v === 'number' ? v : v.getTime();
  }

  private counter(key: string, create: boolean): Counter | undefined {
    const t = this.t();
    let c = this.counters.get(key);
    if (c && c.resetAt <= t && c.inFlight === 0) {
      this.counters.delete(key);
      c = undefined;
    }
    if (!c && create) {
      c = { failures: 0, spent: 0, inFlight: 0, resetAt: t + this.limits.windowMs, lastFailureAt: 0 };
      this.counters.set(key, c);
      // Keep the maps bounded under a spray of random user names.
      if (this.counters.size > MAX_KEYS) this.prune();
    }
    return c;
  }

  /** Milliseconds until this counter admits another attempt (0: now). */
  private wait(c: Counter | undefined, limit: number): number {
    if (!c || c.failures + c.spent + c.inFlight < limit) return 0;
    // Past the budget: one attempt at a time, after a delay that grows with every failure.
    if (c.inFlight > 0) return Math.max(1000, this.limits.baseDelayMs);
    const extra = Math.max(0, c.failures - limit);
    const delay = Math.min(this.limits.baseDelayMs * 2 ** Math.min(extra, 30), this.limits.windowMs);
    return Math.max(0, c.lastFailureAt + delay - this.t());
  }

  private prune(): void {
    const t = this.t();
    for (const [k, c] of this.counters) if (c.resetAt <= t && c.inFlight === 0) this.counters.delete(k);
    for (const [k, until] of this.known) if (until <= t) this.known.delete(k);
  }

  private isKnown(account: string, ip: string): boolean {
    const until = this.known.get(`${account}|${ip}`);
    return until !== undefined && until > this.t();
  }

  /**
   * Reserves an attempt for this account and address, or throws TooManyRequests (the same generic
   * message whatever the reason, with the seconds to wait). Synchronous on purpose: nothing can run
   * between the check and the reservation.
   */
  begin(account: string, ip: string): Attempt {
    const accountKey = this.isKnown(account, ip) ? `k:${account}|${ip}` : `a:${account}`;
    const keys: [string, number][] = [
      [accountKey, this.limits.perAccount],
      [`ip:${ip}`, this.limits.perIp],
    ];
    const wait = Math.max(...keys.map(([k, limit]) => this.wait(this.counter(k, false), limit)));
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new TooManyRequests(`too many sign-in attempts, try again in ${seconds} seconds`, seconds);
    }
    const held = keys.map(([k]) => this.counter(k, true)!);
    for (const c of held) c.inFlight += 1;
    const accountWide = held[0]!;
    let done = false;
    const cancel = (): void => {
      if (done) return;
      done = true;
      for (const c of held) c.inFlight -= 1;
    };
    const end = (failed: boolean): void => {
      if (done) return;
      done = true;
      if (failed) this.failedTotal += 1;
      const t = this.t();
      for (const c of held) {
        c.inFlight -= 1;
        if (failed) {
          c.failures += 1;
          c.lastFailureAt = t;
        }
      }
      if (!failed) {
        // Every attempt evaluated for an account counts against its window, successes too: a right
        // password in the middle of a guessing burst frees no slot for the guesses. (The address
        // counter counts failures only: many people sign in from behind one proxy.) The account's
        // own budget at a known address starts afresh.
        if (accountKey.startsWith('a:')) accountWide.spent += 1;
        this.counters.delete(`k:${account}|${ip}`);
        this.known.set(`${account}|${ip}`, t + this.limits.knownAddressMs);
        if (this.known.size > MAX_KEYS) this.prune();
      }
    };
    return { fail: () => end(true), succeed: () => end(false), cancel };
  }

  /** Failed attempts since start (wrong password or token, unknown or disabled account): for /metrics. */
  get failures(): number {
    return this.failedTotal;
  }
}
