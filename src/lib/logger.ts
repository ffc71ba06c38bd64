import { createRequire } from 'node:module';
import type { LogFn, Logger as PinoLogger } from 'pino';
import { redactDeep, redactString } from './redact.js';

/** What podgate code logs through: pino's level methods, `child` and the level. */
export interface Logger {
  level: string;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const LEVEL_VALUES: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

let level = 'info';
let root: PinoLogger | undefined;

/**
 * pino itself, made on the first record that passes the level: a CLI command that logs nothing (the
 * usual case at `warn`) never loads it, which is a good part of a short command's start-up. Loaded with
 * require (pino is CommonJS) so that logging stays synchronous; the bundle keeps it external.
 */
function pinoRoot(): PinoLogger {
  if (!root) {
    const { pino, destination } = createRequire(import.meta.url)('pino') as typeof import('pino');
    root = pino(
      {
        level,
        base: undefined,
        // Every record goes through the deep redaction (any depth, errors included); bindings: see child.
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
  }
  return root;
}

/**
 * A logger whose pino instance (root or child) is made when it first writes a record. Every logger
 * follows the one process-wide level (`setLogLevel`), children included.
 */
class LazyLogger implements Logger {
  #real: PinoLogger | undefined;

  constructor(private readonly bindings?: Record<string, unknown>) {}

  get level(): string {
    return level;
  }

  set level(value: string) {
    setLogLevel(value);
  }

  child(bindings: Record<string, unknown>): Logger {
    // pino applies no formatter to a child's bindings: redact them here.
    return new LazyLogger({ ...this.bindings, ...(redactDeep(bindings) as Record<string, unknown>) });
  }

  trace = this.method('trace');
  debug = this.method('debug');
  info = this.method('info');
  warn = this.method('warn');
  error = this.method('error');
  fatal = this.method('fatal');

  private method(name: Level): LogFn {
    return ((...args: unknown[]) => {
      if ((LEVEL_VALUES[name] ?? 0) < (LEVEL_VALUES[level] ?? 30)) return;
      const real = this.pino();
      (real[name] as (...a: unknown[]) => void)(...args);
    }) as LogFn;
  }

  private pino(): PinoLogger {
    const r = pinoRoot();
    this.#real ??= this.bindings ? r.child(this.bindings) : r;
    // pino children copy the level when made: keep this one on the process-wide level.
    if (this.#real.level !== level) this.#real.level = level;
    return this.#real;
  }
}

/**
 * One structured logger; modules take a child (`logger.child({ module: 'pki' })`).
 * Level from PODGATE_LOG_LEVEL is read by config and applied with `setLogLevel`.
 * Logs go to stderr so that CLI output on stdout stays clean for pipes. Secret-bearing keys are redacted
 * at any depth (see ./redact.ts).
 */
export const logger: Logger = new LazyLogger();

export function setLogLevel(value: string): void {
  level = value;
  if (root) root.level = value;
}
