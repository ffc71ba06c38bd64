import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { LeaderState, type Leadership } from '../lib/leadership.js';
import { logger } from '../lib/logger.js';
import { KubeApiError, type KubeApi, type KubeObject, type ObjectRef } from './kube-api.js';

const log = logger.child({ module: 'cluster.lease' });

export interface LeaseLeadershipOptions {
  namespace: string;
  /** The Lease object (default `podgate-manager`). */
  name?: string;
  /** Who this replica is in `holderIdentity` (default: host name + a random suffix, unique per process). */
  identity?: string;
  /** How long a lease holds without renewal (seconds, default 15). */
  leaseDurationSeconds?: number;
  /** The leader steps down when it could not renew for this long (ms, default 10000; below the duration). */
  renewDeadlineMs?: number;
  /** How often to renew (leader) or try (others) (ms, default 2000). */
  retryPeriodMs?: number;
  /** Local time (tests); default Date.now. */
  now?: () => number;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** MicroTime as the API server writes it: RFC 3339 with six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Leadership in cluster mode: a `coordination.k8s.io/v1` Lease, the way client-go's leader election
 * does it. The holder renews every `retryPeriodMs`; the others take the lease only after it went
 * unrenewed for `leaseDurationSeconds` counted on their own clock from when they last saw it change
 * (so clocks need not agree); every write carries the resourceVersion it read, so of two replicas
 * racing for it one gets 409 Conflict. A leader that could not renew for `renewDeadlineMs` steps down,
 * which is before anyone may take over: there is a moment with no leader, never two. `stop()` hands
 * the lease back (empty holder) so that another replica takes over without waiting it out.
 */
export class LeaseLeadership implements Leadership {
  readonly identity: string;
  private readonly state = new LeaderState();
  private readonly ref: ObjectRef;
  private readonly durationMs: number;
  private readonly durationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private tick: Promise<void> = Promise.resolve();
  /** What we last saw in the lease, and when (our clock): the expiry of somebody else's lease counts from it. */
  private observed: { key: string; at: number } | undefined;
  private lastRenew = 0;

  constructor(
    private readonly kube: Pick<KubeApi, 'get' | 'mergePatch' | 'create'>,
    options: LeaseLeadershipOptions,
  ) {
    this.ref = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      name: options.name ?? 'podgate-manager',
      namespace: options.namespace,
    };
    this.identity = options.identity ?? `${hostname()}_${randomBytes(4).toString('hex')}`;
    this.durationSeconds = options.leaseDurationSeconds ?? 15;
    this.durationMs = this.durationSeconds * 1000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryMs = options.retryPeriodMs ?? 2000;
    this.now = options.now ?? Date.now;
    if (this.renewDeadlineMs >= this.durationMs) {
      throw new Error('renewDeadlineMs must be shorter than the lease duration');
    }
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
    if (!this.state.get()) return;
    this.state.set(false);
    try {
      const lease = await this.kube.get(this.ref);
      const spec = (lease?.spec ?? {}) as LeaseSpec;
      if (lease && spec.holderIdentity === this.identity) {
        await this.write(lease, { holderIdentity: '', leaseDurationSeconds: 1 });
      }
    } catch (err) {
      log.warn({ err: String(err) }, 'could not hand the lease back; it expires by itself');
    }
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.tick = this.attempt();
    }, this.retryMs);
    this.timer.unref();
  }

  private async attempt(): Promise<void> {
    // the renew deadline counts from before the request went out (the write may land any time after)
    const started = this.now();
    try {
      const held = await this.acquireOrRenew();
      if (!this.running) return;
      if (held) {
        this.lastRenew = started;
        if (!this.state.get()) log.info({ identity: this.identity }, 'took the leadership (Lease)');
        this.state.set(true);
      } else {
        this.state.set(false);
      }
    } catch (err) {
      log.debug({ err: String(err) }, 'lease attempt failed');
      if (this.state.get() && this.now() - this.lastRenew >= this.renewDeadlineMs) {
        log.warn({ err: String(err) }, 'could not renew the lease in time: stepping down');
        this.state.set(false);
      }
    } finally {
      // a leader that ran out of its renew deadline while a call hung also steps down here
      if (this.state.get() && this.now() - this.lastRenew >= this.renewDeadlineMs) this.state.set(false);
      this.schedule();
    }
  }

  /** One round of client-go's tryAcquireOrRenew; true when this replica holds the lease afterwards. */
  private async acquireOrRenew(): Promise<boolean> {
    const now = this.now();
    const lease = await this.kube.get(this.ref);
    if (!lease) {
      try {
        await this.kube.create!({
          apiVersion: this.ref.apiVersion,
          kind: this.ref.kind,
          metadata: { name: this.ref.name, namespace: this.ref.namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: this.durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        return true;
      } catch (err) {
        if (err instanceof KubeApiError && err.kubeStatus === 409) return false; // somebody was faster
        throw err;
      }
    }
    const spec = (lease.spec ?? {}) as LeaseSpec;
    const key = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}|${lease.metadata.resourceVersion ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    const holder = spec.holderIdentity ?? '';
    const mine = holder === this.identity;
    if (!mine && holder !== '') {
      const duration = (spec.leaseDurationSeconds ?? this.durationSeconds) * 1000;
      if (this.observed.at + duration > now) return false; // held by someone else, not expired
    }
    // a holder change from us while we believed we led means we lost it: a new acquisition
    const patch: LeaseSpec = mine
      ? { renewTime: microTime(now), leaseDurationSeconds: this.durationSeconds }
      : {
          holderIdentity: this.identity,
          leaseDurationSeconds: this.durationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
        };
    try {
      await this.write(lease, patch);
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.kubeStatus === 409) return false; // somebody wrote first
      throw err;
    }
  }

  /** A merge patch that applies only to the version read (409 Conflict otherwise). */
  private write(lease: KubeObject, spec: LeaseSpec): Promise<KubeObject> {
    return this.kube.mergePatch(this.ref, {
      metadata: {
        name: this.ref.name,
        namespace: this.ref.namespace,
        resourceVersion: lease.metadata.resourceVersion,
      },
      spec,
    });
  }
}
