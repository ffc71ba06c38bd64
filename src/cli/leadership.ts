import type { Config } from '../config/schema.js';
import { storeTarget } from '../config/load.js';
import { SoleLeadership, type Leadership } from '../lib/leadership.js';

/**
 * Who runs the timers of `serve`: the only process on SQLite; on PostgreSQL the holder of the
 * coordination.k8s.io Lease `podgate-manager` when running in a pod, else of a PostgreSQL advisory lock.
 * The Lease's renew deadline is two thirds of its duration and replicas retry every duration/7.5
 * (client-go's 15 s / 10 s / 2 s proportions).
 */
export async function openLeadership(
  config: Config,
  env: NodeJS.ProcessEnv,
): Promise<{ leadership: Leadership; kind: 'sole' | 'lease' | 'advisory'; close(): Promise<void> }> {
  const target = storeTarget(config);
  if (target.engine === 'sqlite')
    return { leadership: new SoleLeadership(), kind: 'sole', close: async () => {} };
  if (env.KUBERNETES_SERVICE_HOST) {
    const [{ connectKube }, { LeaseLeadership }] = await Promise.all([
      import('../cluster/kube-connection.js'),
      import('../cluster/lease-leadership.js'),
    ]);
    const kube = connectKube(config, env);
    const seconds = config.store.leaseSeconds;
    return {
      leadership: new LeaseLeadership(kube.api, {
        namespace: config.store.leaseNamespace,
        leaseDurationSeconds: seconds,
        renewDeadlineMs: Math.floor((seconds * 2000) / 3),
        retryPeriodMs: Math.floor((seconds * 1000) / 7.5),
      }),
      kind: 'lease',
      close: () => kube.close(),
    };
  }
  const { AdvisoryLeadership } = await import('../store/pg/advisory-leadership.js');
  return {
    leadership: new AdvisoryLeadership(target, {
      retryMs: Math.floor((config.store.leaseSeconds * 1000) / 7.5),
      checkMs: Math.floor((config.store.leaseSeconds * 1000) / 7.5),
    }),
    kind: 'advisory',
    close: async () => {},
  };
}
