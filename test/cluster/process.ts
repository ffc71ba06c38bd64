/**
 * One component of the test cluster as a process: its argv, a log file that outlives it, a readiness
 * probe, and a stop that waits (SIGTERM, then SIGKILL). Processes either belong to the caller (mocha: they
 * die with it) or are detached (`npm run test-cluster -- up`: they outlive the command and are found again
 * by pid).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, existsSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';

export interface ProcessSpec {
  name: string;
  binary: string;
  args: string[];
  logFile: string;
  /** URL answering 200 when the component is ready (https: the certificate is not checked, loopback only). */
  readyUrl?: string;
  /** Extra check after the URL answers (or instead of it). */
  readyCheck?: () => Promise<boolean>;
  detached?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * Children that belong to this process (not detached): killed when it exits, also when mocha is stopped
 * with SIGTERM or SIGHUP, so an interrupted run leaves no etcd or apiserver behind.
 */
const owned = new Set<ChildProcess>();
let exitHookInstalled = false;
function killOwnedOnExit(child: ChildProcess): void {
  owned.add(child);
  child.once('exit', () => owned.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of owned) c.kill('SIGKILL');
  });
  // the default action of these signals ends the process without 'exit' handlers: exit instead
  process.once('SIGTERM', () => process.exit(143));
  process.once('SIGHUP', () => process.exit(129));
}

export class ClusterProcess {
  child?: ChildProcess;
  pid?: number;
  private exited?: string;

  constructor(readonly spec: ProcessSpec) {}

  start(): void {
    const fd = openSync(this.spec.logFile, 'a');
    try {
      this.exited = undefined;
      this.child = spawn(this.spec.binary, this.spec.args, {
        stdio: ['ignore', fd, fd],
        detached: this.spec.detached ?? false,
        env: this.spec.env ?? process.env,
      });
    } finally {
      closeSync(fd);
    }
    this.pid = this.child.pid;
    this.child.on('exit', (code, signal) => {
      this.exited = signal ? `killed by ${signal}` : `exited ${code}`;
    });
    this.child.on('error', (err) => {
      this.exited = `failed to start: ${err.message}`;
    });
    if (this.spec.detached) this.child.unref();
    else killOwnedOnExit(this.child);
  }

  /** Polls the readiness probe; fails at once, with the log's tail, when the process exits. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) throw new Error(`${this.spec.name} ${this.exited}\n${this.logTail()}`);
      const ok =
        (!this.spec.readyUrl || (await probe(this.spec.readyUrl))) &&
        (!this.spec.readyCheck || (await this.spec.readyCheck().catch(() => false)));
      if (ok) return;
      if (Date.now() > deadline) {
        throw new Error(`${this.spec.name} not ready after ${timeoutMs} ms\n${this.logTail()}`);
      }
      await sleep(100);
    }
  }

  get running(): boolean {
    return this.pid !== undefined && !this.exited && isAlive(this.pid);
  }

  async stop(graceMs = 5000): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    await stopPid(pid, graceMs);
    this.pid = undefined;
  }

  logTail(lines = 30): string {
    if (!existsSync(this.spec.logFile)) return '(no log)';
    const all = readFileSync(this.spec.logFile, 'utf8').split('\n');
    return `--- last lines of ${this.spec.logFile} ---\n${all.slice(-lines).join('\n')}`;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // a zombie child still answers signal 0
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the pid is gone. */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    while (isAlive(pid)) await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** GET url; true on 200. https certificates are not checked (the servers are ours, on loopback). */
export function probe(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', rejectUnauthorized: false, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
