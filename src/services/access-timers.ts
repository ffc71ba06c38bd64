import { logger } from '../lib/logger.js';
import type { AppContext } from './context.js';

const log = logger.child({ module: 'access-timers' });

export interface AccessTimerOptions {
  /** How often the stored version is compared with the last publication (changes by other processes). */
  pollMs?: number;
  /** How often the bundle is recomputed anyway (a certificate that expired changes it without a write). */
  refreshMs?: number;
  /** How often addresses of devices gone for the grace period are freed. */
  sweepMs?: number;
}

/**
 * The access bundle's timers for a long-running process (`serve`): publish what other processes
 * (CLI, another replica) changed, follow expiries, and free addresses after the grace period.
 * Each is unref'd; returns the function that stops them.
 */
export function startAccessTimers(
  ctx: Pick<AppContext, 'access' | 'addresses'>,
  o: AccessTimerOptions = {},
): () => void {
  // changed()/refresh() queue behind a publication in progress (no stacking) and never reject: a
  // failure is logged and audited there, so the timers need not wait for them.
  const timers = [
    setInterval(() => void ctx.access.changed(), o.pollMs ?? 1_000),
    setInterval(() => void ctx.access.refresh(), o.refreshMs ?? 60_000),
    setInterval(() => {
      ctx.addresses
        .sweep()
        .then((freed) => {
          if (freed.length > 0) void ctx.access.changed();
        })
        .catch((err: unknown) => log.error({ err }, 'tunnel address sweep failed'));
    }, o.sweepMs ?? 3_600_000),
  ];
  for (const t of timers) t.unref();
  void ctx.access.refresh(); // publish once at start: the bundle may be older than this process's view
  return () => timers.forEach((t) => clearInterval(t));
}
