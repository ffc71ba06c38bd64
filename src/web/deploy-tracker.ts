import { AppError, Conflict } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import type { ClusterPort } from './cluster-port.js';

const log = logger.child({ module: 'web.deploy' });

export interface DeployState {
  state: 'idle' | 'running' | 'done' | 'failed';
  startedAt: string | null;
  finishedAt: string | null;
  startedBy: string | null;
  events: { time: string; message: string }[];
  error: string | null;
}

/**
 * Runs one deploy at a time in the background and keeps its progress, so the cluster page can show
 * it live (JavaScript polls `GET /api/v1/deploy`; without JavaScript the page refreshes itself).
 */
export class DeployTracker {
  private current: DeployState = {
    state: 'idle',
    startedAt: null,
    finishedAt: null,
    startedBy: null,
    events: [],
    error: null,
  };

  constructor(private readonly now: () => Date) {}

  get(): DeployState {
    return { ...this.current, events: [...this.current.events] };
  }

  /** Starts a deploy; Conflict while one is running. Resolves when it has started, not finished. */
  start(
    cluster: Pick<ClusterPort, 'deploy'>,
    actor: string,
    onDone?: (s: DeployState) => Promise<void>,
  ): DeployState {
    if (this.current.state === 'running') throw new Conflict('a deploy is already running');
    const s: DeployState = {
      state: 'running',
      startedAt: this.now().toISOString(),
      finishedAt: null,
      startedBy: actor,
      events: [],
      error: null,
    };
    this.current = s;
    const push = (message: string): void => {
      s.events.push({ time: this.now().toISOString(), message });
      if (s.events.length > 500) s.events.shift();
    };
    push('deploy started');
    const finish = async (state: 'done' | 'failed', message: string): Promise<void> => {
      const finishedAt = this.now().toISOString();
      // onDone (the audit row) is written before the state says the deploy ended, so whoever sees
      // `done` or `failed` also finds the audit row.
      try {
        await onDone?.({ ...this.get(), state, finishedAt, events: [...s.events] });
      } catch (err) {
        log.error({ err }, 'deploy end hook failed');
      }
      s.state = state;
      s.finishedAt = finishedAt;
      push(message);
    };
    void cluster.deploy(push).then(
      () => finish('done', 'deploy finished'),
      (err: unknown) => {
        // AppError messages are written for people; anything else stays in the server log.
        s.error = err instanceof AppError ? err.message : 'unexpected error (see the server log)';
        log.error({ err }, 'deploy failed');
        return finish('failed', `deploy failed: ${s.error}`);
      },
    );
    return this.get();
  }
}
