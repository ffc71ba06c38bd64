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

// pino children copy the level when created: keep them so a later setLogLevel reaches every module.
const children: Logger[] = [];
const makeChild = logger.child.bind(logger);
logger.child = ((bindings, options) => {
  const child = makeChild(bindings, options);
  children.push(child as unknown as Logger);
  return child;
}) as Logger['child'];

export function setLogLevel(level: string): void {
  logger.level = level;
  for (const child of children) child.level = level;
}

export type { Logger };
