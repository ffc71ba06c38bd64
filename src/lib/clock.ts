/**
 * Time for the long-running timers (CRL upkeep, server certificate renewal, scheduled backups,
 * openvpn restarts): one small interface, so that a test can drive months of them with a clock it
 * moves by hand, and one place that knows setTimeout's limit.
 */

/**
 * The longest delay setTimeout honours. Node clamps anything longer (about 24.8 days) to 1 ms, with a
 * warning: a timer meant for a month would fire at once, and a repeating one back to back forever.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): Date;
  /**
   * Calls `fn` once, `ms` from now (any length: delays past MAX_TIMEOUT_MS are waited out in chunks).
   * What `fn` returns is ignored by the system clock; a test clock may wait for a returned promise.
   */
  after(ms: number, fn: () => unknown): Timer;
}

/**
 * setTimeout without the 2^31−1 ms limit: a longer delay sleeps in chunks and re-arms until the
 * deadline (Date.now() based, so a suspended host fires late, never early). Timers are unref'd: they
 * never keep the process alive on their own.
 */
export function longTimeout(fn: () => unknown, ms: number): Timer {
  const due = Date.now() + Math.max(0, ms);
  let handle: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = (): void => {
    const left = due - Date.now();
    const chunked = left > MAX_TIMEOUT_MS;
    handle = setTimeout(
      () => {
        if (cancelled) return;
        if (chunked) arm();
        else void fn();
      },
      Math.min(Math.max(left, 0), MAX_TIMEOUT_MS),
    );
    handle.unref();
  };
  arm();
  return {
    cancel: () => {
      cancelled = true;
      if (handle) clearTimeout(handle);
    },
  };
}

export const systemClock: Clock = {
  now: () => new Date(),
  after: (ms, fn) => longTimeout(fn, ms),
};

/**
 * Runs `fn` every `everyMs` (first after `firstMs`, default everyMs) on `clock`. The next run is armed
 * when the previous one has settled, so runs never overlap; an error is handed to `onError` (the
 * caller logs it) and the schedule goes on.
 */
export function repeat(
  clock: Clock,
  everyMs: number,
  fn: () => unknown,
  o: { firstMs?: number; onError?: (err: unknown) => void } = {},
): Timer {
  let timer: Timer | undefined;
  let stopped = false;
  const tick = async (): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      o.onError?.(err);
    }
    if (!stopped) timer = clock.after(everyMs, tick);
  };
  timer = clock.after(o.firstMs ?? everyMs, tick);
  return {
    cancel: () => {
      stopped = true;
      timer?.cancel();
    },
  };
}
