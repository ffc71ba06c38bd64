import { TooManyRequests } from '../lib/errors.js';
import type { SharedLimits } from '../services/shared-limits.js';
import type { ThrottleLimits } from './login-throttle.js';

/** The part of an attempt the replicas share: ended once, after the local throttle's own end. */
export interface SharedAttempt {
  fail(): Promise<void>;
  succeed(): Promise<void>;
}

const SCOPE = 'signin';
const KNOWN = 'signin.known';

/**
 * The sign-in throttle's budgets counted across every replica (the local LoginThrottle still bounds
 * each process's own burst and is asked first). The same rules as the local one: `perAccount`
 * attempts per account and `perIp` per address in the window are evaluated, then one more after a
 * delay that doubles with each further attempt; an attempt is reserved before the password is hashed
 * and stays counted when it fails. A success frees its address slot (the address counts failures only:
 * many people sign in from behind one proxy) and marks the address as known for the account; an
 * account's attempts from a known address are counted apart, so a guesser elsewhere cannot keep its
 * owner out, whichever replica they reach.
 */
export class SharedLoginGate {
  constructor(
    private readonly shared: SharedLimits,
    private readonly limits: ThrottleLimits,
    private readonly now: () => number,
  ) {}

  /** Reserves the attempt on every shared budget, or throws TooManyRequests (nothing kept). */
  async begin(account: string, ip: string): Promise<SharedAttempt> {
    const { perAccount, perIp, windowMs, baseDelayMs, knownAddressMs } = this.limits;
    const at = this.now();
    const known = (await this.shared.newest(KNOWN, `${account}|${ip}`, at - knownAddressMs)) !== undefined;
    const accountKey = known ? `k:${account}|${ip}` : `a:${account}`;
    const ipKey = `ip:${ip}`;
    const refuse = (ms: number): never => {
      const seconds = Math.max(1, Math.ceil(ms / 1000));
      throw new TooManyRequests(`too many sign-in attempts, try again in ${seconds} seconds`, seconds);
    };
    const a = await this.shared.admit(SCOPE, accountKey, perAccount, windowMs, at, baseDelayMs);
    if (!a.allowed) refuse(a.retryAfterMs);
    const i = await this.shared.admit(SCOPE, ipKey, perIp, windowMs, at, baseDelayMs);
    if (!i.allowed) {
      await this.shared.forget(SCOPE, accountKey, at);
      refuse(i.retryAfterMs);
    }
    return {
      fail: async () => undefined,
      succeed: async () => {
        await this.shared.forget(SCOPE, ipKey, at);
        // as locally: an account's own budget at a known address starts afresh after a success
        if (known) await this.shared.forget(SCOPE, accountKey, at);
        await this.shared.mark(KNOWN, `${account}|${ip}`, this.now());
      },
    };
  }
}
