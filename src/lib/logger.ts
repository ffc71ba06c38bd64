import { pino, destination, type Logger } from 'pino';

/**
 * One structured logger; modules take a child (`logger.child({ module: 'pki' })`).
 * Level from PODGATE_LOG_LEVEL is read by config and applied with `setLogLevel`.
 * Logs go to stderr so that CLI output on stdout stays clean for pipes.
 */
export const logger: Logger = pino(
  { level: 'info', base: undefined, redact: ['password', '*.password', 'keyPem', '*.keyPem'] },
  destination({ fd: 2, sync: true }),
);

export function setLogLevel(level: string): void {
  logger.level = level;
}

export type { Logger };
