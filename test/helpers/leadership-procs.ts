/**
 * Starts test/helpers/leadership-worker.ts processes and collects what they print (one JSON line per
 * leadership change, with the worker's Date.now(): every worker runs on this machine's clock).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('./leadership-worker.js', import.meta.url));

export interface LeaderEvent {
  id: string;
  leader?: boolean;
  started?: boolean;
  at: number;
}

export interface WorkerProc {
  id: string;
  child: ChildProcess;
  events: LeaderEvent[];
  stderr(): string;
  exited: Promise<void>;
}

/** All workers started by a suite: killed (SIGKILL) by `killAll`, even when a test failed. */
export class LeadershipWorkers {
  readonly procs: WorkerProc[] = [];

  start(args: Record<string, unknown> & { identity: string }): WorkerProc {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const events: LeaderEvent[] = [];
    let err = '';
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('{')) events.push(JSON.parse(line) as LeaderEvent);
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const proc = { id: args.identity, child, events, stderr: () => err, exited };
    this.procs.push(proc);
    return proc;
  }

  /** Waits until `check` holds (polling every 50 ms), failing with the workers' stderr after `ms`. */
  async until(what: string, check: () => boolean, ms = 60_000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) {
        const logs = this.procs.map((p) => `${p.id}: ${JSON.stringify(p.events)}\n${p.stderr()}`);
        throw new Error(`timed out waiting for ${what}\n${logs.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  leaders(): WorkerProc[] {
    return this.procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null && isLeader(p));
  }

  async killAll(): Promise<void> {
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
    await Promise.all(this.procs.map((p) => p.exited));
    this.procs.length = 0;
  }
}

export function isLeader(p: WorkerProc): boolean {
  const last = [...p.events].reverse().find((e) => e.leader !== undefined);
  return last?.leader === true;
}

/** Leadership intervals [from, to) of each worker (`to` = end for one still leading, or its death). */
export function intervals(p: WorkerProc, end: number): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  let from: number | undefined;
  for (const e of p.events) {
    if (e.leader === true) from = e.at;
    if (e.leader === false && from !== undefined) {
      out.push({ from, to: e.at });
      from = undefined;
    }
  }
  if (from !== undefined) out.push({ from, to: end });
  return out;
}

/** Throws when two workers' leadership intervals overlap. */
export function assertNeverTwoLeaders(procs: readonly WorkerProc[], ends: Map<string, number>): void {
  const all = procs.flatMap((p) =>
    intervals(p, ends.get(p.id) ?? Date.now()).map((i) => ({ ...i, id: p.id })),
  );
  for (const a of all) {
    for (const b of all) {
      if (a.id !== b.id && a.from < b.to && b.from < a.to) {
        throw new Error(`two leaders at once: ${a.id} [${a.from}, ${a.to}) and ${b.id} [${b.from}, ${b.to})`);
      }
    }
  }
}
