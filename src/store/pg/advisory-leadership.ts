import { createHash } from 'node:crypto';
import type { Client } from 'pg';
import { LeaderState, type Leadership } from '../../lib/leadership.js';
import { logger } from '../../lib/logger.js';
import { clientConfig, loadPg, type PgTarget } from './connection.js';

const log = logger.child({ module: 'store.pg.leadership' });

export interface AdvisoryLeadershipOptions {
  /** Name of the lock; replicas that share it compete (default `podgate.timers`). */
  name?: string;
  /** How often a follower tries to take the lock (ms, default 2000). */
  retryMs?: number;
  /** How often the leader checks that its connection (and so its lock) is still there (ms, default 2000). */
  checkMs?: number;
  /** A check that takes longer than this counts as a lost connection (ms, default 3000). */
  checkTimeoutMs?: number;
}

/** The 64-bit advisory lock key of a name: the first 8 bytes of its sha256, as a signed bigint. */
export function advisoryKey(name: string): string {
  const digest = createHash('sha256').update(name).digest();
  return BigInt.asIntN(64, digest.readBigUInt64BE(0)).toString();
}

/**
 * Leadership outside Kubernetes: a session-level `pg_try_advisory_lock` held on a connection of its
 * own (never one of the pool's: a pooled connection changes hands, the lock would go with it).
 * PostgreSQL releases the lock when that session ends, so a replica that dies, or whose connection
 * the server drops, frees it for the others at once. The leader checks its connection every `checkMs`
 * and steps down when a check fails or takes longer than `checkTimeoutMs`, before the server
 * (which notices a dead peer only through TCP keepalive) lets anybody else take the lock.
 */
export class AdvisoryLeadership implements Leadership {
  private readonly state = new LeaderState();
  private readonly key: string;
  private readonly retryMs: number;
  private readonly checkMs: number;
  private readonly checkTimeoutMs: number;
  private client: Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private tick: Promise<void> = Promise.resolve();

  constructor(
    private readonly target: PgTarget,
    options: AdvisoryLeadershipOptions = {},
  ) {
    this.key = advisoryKey(options.name ?? 'podgate.timers');
    this.retryMs = options.retryMs ?? 2000;
    this.checkMs = options.checkMs ?? 2000;
    this.checkTimeoutMs = options.checkTimeoutMs ?? 3000;
  }

  isLeader(): boolean {
    return this.state.get();
  }

  onChange(listener: (leader: boolean) => void): () => void {
    return this.state.subscribe(listener);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.tick = this.attempt();
    await this.tick;
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.tick;
    const client = this.client;
    this.client = undefined;
    this.state.set(false);
    if (client) {
      // ending the session releases the lock; the explicit unlock just says so sooner in pg_locks
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [this.key]).catch(() => undefined);
      await client.end().catch(() => undefined);
    }
  }

  private schedule(): void {
    if (!this.running) return;
    const ms = this.state.get() ? this.checkMs : this.retryMs;
    this.timer = setTimeout(() => {
      this.tick = this.attempt();
    }, ms);
    this.timer.unref();
  }

  private async attempt(): Promise<void> {
    try {
      const client = this.client ?? (await this.connect());
      if (this.state.get()) {
        await withTimeout(client.query('SELECT 1'), this.checkTimeoutMs);
      } else {
        const r = await withTimeout(
          client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS got', [this.key]),
          this.checkTimeoutMs,
        );
        if (r.rows[0]?.got === true && this.running) {
          log.info({ key: this.key }, 'took the leadership (advisory lock)');
          this.state.set(true);
        }
      }
    } catch (err) {
      this.lose(err);
    } finally {
      this.schedule();
    }
  }

  private async connect(): Promise<Client> {
    const pg = await loadPg();
    const client = new pg.Client(clientConfig(this.target, 'podgate-leadership'));
    client.on('error', (err) => {
      if (this.client === client) this.lose(err);
    });
    client.on('end', () => {
      if (this.client === client) this.lose(new Error('connection ended'));
    });
    await client.connect();
    this.client = client;
    return client;
  }

  /** Steps down and drops the connection (a new one is made on the next attempt). */
  private lose(err: unknown): void {
    const client = this.client;
    this.client = undefined;
    if (this.state.get()) log.warn({ err: String(err) }, 'lost the leadership (advisory lock)');
    else log.debug({ err: String(err) }, 'advisory lock attempt failed');
    this.state.set(false);
    if (client) void client.end().catch(() => undefined);
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
