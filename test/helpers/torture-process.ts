/**
 * What both torture suites (SQLite and PostgreSQL) use to drive their writer processes: a child that
 * prints one line per acknowledged step and `ready` once started, the seeded kill schedule, and the one
 * spelling serials are compared in.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Serials compared in one spelling: upper-case hex without leading zeros. */
export const normSerial = (s: string) => s.replace(/:/g, '').toUpperCase().replace(/^0+/, '');

/** mulberry32 for the kill schedule, seeded so a failing run can be repeated (PODGATE_TORTURE_SEED). */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TortureProcess {
  child: ChildProcess;
  /** Every stdout line so far (what the process acknowledged). */
  lines: string[];
  /** Settles on the `ready` line, or when the process ends without it. */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

/** Starts `node argv…` with logging at error level, collecting its lines. */
export function startTortureProcess(argv: string[], env: NodeJS.ProcessEnv = {}): TortureProcess {
  const child = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PODGATE_LOG_LEVEL: 'error', ...env },
  });
  const lines: string[] = [];
  let buf = '';
  let err = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const l of parts) {
      lines.push(l);
      if (l === 'ready') onReady();
    }
  });
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      onReady();
      resolve({ code, signal });
    }),
  );
  return { child, lines, ready, exited, stderr: () => err };
}
