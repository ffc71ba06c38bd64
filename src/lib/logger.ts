import { pino, destination, type Logger } from 'pino';
import { redactDeep, redactString } from './redact.js';

/**
 * One structured logger; modules take a child (`logger.child({ module: 'pki' })`).
 * Level from PODGATE_LOG_LEVEL is read by config and applied with `setLogLevel`.
 * Logs go to stderr so that CLI output on stdout stays clean for pipes. Secret-bearing keys are redacted
 * at any depth (see ./redact.ts).
 */
export const logger: Logger = pino(
  {
    level: 'info',
    base: undefined,
    // Every record goes through the deep redaction (any depth, errors included); bindings: see below.
    formatters: { log: (obj) => redactDeep(obj) as Record<string, unknown> },
    // redactDeep already turned errors into plain objects; pino's own err serializer would rename them.
    serializers: { err: (e: unknown) => e },
    // The message text too: a message that quotes a profile must not carry its key.
    hooks: {
      logMethod(args, method) {
        const safe = args.map((a: unknown) => (typeof a === 'string' ? redactString(a) : a));
        return method.apply(this, safe as Parameters<typeof method>);
      },
    },
  },
  destination({ fd: 2, sync: true }),
);

// pino children copy the level when created: keep them so a later setLogLevel reaches every module.
const children: Logger[] = [];
const makeChild = logger.child.bind(logger);
logger.child = ((bindings, options) => {
  // pino applies no formatter to a child's bindings: redact them here.
  const child = makeChild(redactDeep(bindings) as typeof bindings, options);
  children.push(child as unknown as Logger);
  return child;
}) as Logger['child'];

export function setLogLevel(level: string): void {
  logger.level = level;
  for (const child of children) child.level = level;
}

export type { Logger };
