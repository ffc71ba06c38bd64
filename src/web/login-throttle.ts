import { TooManyRequests } from '../lib/errors.js';

/**
 * Counts failed sign-ins per account and per client address in a fixed window and refuses further
 * tries once a limit is reached (HTTP 429, same generic message whatever the reason). Only failures
 * count, so people who type their password right are never slowed down; the check runs before the
 * password hash is computed, so a flood costs no argon2 time. In memory: one process serves the app,
 * and a restart forgetting the counters is acceptable for a throttle.
 */
export interface ThrottleLimits {
  perAccount: number;
  perIp: number;
  windowMs: number;
}

export const DEFAULT_THROTTLE: ThrottleLimits = { perAccount: 5, perIp: 20, windowMs: 15 * 60_000 };

interface Counter {
  count: number;
  resetAt: number;
}

export class LoginThrottle {
  private readonly counters = new Map<string, Counter>();

  constructor(
    private readonly limits: ThrottleLimits,
    private readonly now: () => Date,
  ) {}

  private get(key: string): Counter | undefined {
    const c = this.counters.get(key);
    if (c && c.resetAt <= this.now().getTime()) {
      this.counters.delete(key);
      return undefined;
    }
    return c;
  }

  private bump(key: string): void {
    const c = this.get(key);
    if (c) c.count += 1;
    else this.counters.set(key, { count: 1, resetAt: this.now().getTime() + this.limits.windowMs });
    // Keep the map bounded under a spray of random user names.
    if (this.counters.size > 50_000) this.prune();
  }

  private prune(): void {
    const t = this.now().getTime();
    for (const [k, c] of this.counters) if (c.resetAt <= t) this.counters.delete(k);
  }

  /** Throws TooManyRequests when this account or address has used up its failures. */
  check(account: string, ip: string): void {
    const a = this.get(`u:${account}`);
    const i = this.get(`ip:${ip}`);
    if ((a && a.count >= this.limits.perAccount) || (i && i.count >= this.limits.perIp)) {
      throw new TooManyRequests('too many sign-in attempts, try again later');
    }
  }

  fail(account: string, ip: string): void {
    this.bump(`u:${account}`);
    this.bump(`ip:${ip}`);
  }

  /** A successful sign-in clears the account's counter (not the address's). */
  succeed(account: string): void {
    this.counters.delete(`u:${account}`);
  }
}
