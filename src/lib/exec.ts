import { spawn } from 'node:child_process';
import { logger } from './logger.js';
import { AppError } from './errors.js';

const log = logger.child({ module: 'exec' });

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** When false, a non-zero exit is returned instead of thrown. Default true. */
  check?: boolean;
}

/**
 * Every local child process goes through here: argv arrays only (never a shell string), logged at debug.
 * Throws an AppError naming the command and its stderr when it fails and `check` is not false.
 */
export function exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('exec: empty argv');
  log.debug({ argv }, 'exec');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) =>
      reject(new AppError(500, 'exec_failed', `cannot run ${cmd}: ${e.message}`, { cause: e })),
    );
    child.on('close', (code, signal) => {
      const result = {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (result.code !== 0 && options.check !== false) {
        reject(
          new AppError(
            500,
            'exec_failed',
            `${argv.join(' ')} exited ${result.code}: ${result.stderr.trim().slice(0, 2000)}`,
          ),
        );
      } else resolve(result);
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}
