/**
 * The upkeep every long-running podgate process does on a timer, shared by `serve` and `server run`:
 * keep the CRL openvpn reads from expiring (re-signed and published when it is a day old or within 7
 * days of its nextUpdate), revoke renewed certificates whose grace has ended (both in
 * RevocationService.ensureFreshCrl, which publishes through every configured publisher: the local file,
 * the cluster's `podgate-crl` Secret), renew the server certificate where this process runs openvpn,
 * and warn while the CA is near its end. Nothing here depends on a web request arriving.
 */
import { repeat, type Clock, type Timer } from '../lib/clock.js';
import { logger } from '../lib/logger.js';

const log = logger.child({ module: 'upkeep' });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface UpkeepDeps {
  clock: Clock;
  revocation: { ensureFreshCrl(): Promise<unknown> };
  /** `server run`: renews the server certificate when due and restarts openvpn with it. */
  renewServer?: () => Promise<unknown>;
  /** The CA-expiry warning (services/ca-status caExpiryWarning), or undefined when there is none. */
  caWarning?: () => string | undefined;
  /** Where a warning goes (default: the log, at warn level), at start and then at most once a day. */
  onWarning?: (message: string) => void;
  /** How often the upkeep runs (default hourly: a renewed certificate is superseded within the hour). */
  everyMs?: number;
  /**
   * When the first run comes (default one period after start, as start-up did the same work). 0 for a
   * replica that just took the leadership over: the old leader may have died with the CRL due.
   */
  firstMs?: number;
}

/** Starts the upkeep timer; the first run comes one period after start (start-up did the same work) unless firstMs says otherwise. */
export function startUpkeep(deps: UpkeepDeps): Timer {
  const { clock } = deps;
  const onWarning = deps.onWarning ?? ((message: string) => log.warn(message));
  let warnedAt = -Infinity;
  const warn = (): void => {
    let message: string | undefined;
    try {
      message = deps.caWarning?.();
    } catch (err) {
      log.error({ err }, 'CA status check failed');
    }
    const at = clock.now().getTime();
    if (message && at - warnedAt >= DAY) {
      warnedAt = at;
      onWarning(message);
    } else if (!message) warnedAt = -Infinity;
  };
  warn();
  return repeat(
    clock,
    deps.everyMs ?? HOUR,
    async () => {
      try {
        await deps.revocation.ensureFreshCrl();
      } catch (err) {
        log.error({ err }, 'CRL re-sign failed');
      }
      if (deps.renewServer) {
        try {
          await deps.renewServer();
        } catch (err) {
          log.error({ err }, 'server certificate renewal failed');
        }
      }
      warn();
    },
    deps.firstMs === undefined ? {} : { firstMs: deps.firstMs },
  );
}
