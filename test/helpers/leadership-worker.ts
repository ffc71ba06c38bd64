/**
 * Child process for test/integration/cluster/leadership.test.ts: competes for the leadership until
 * killed, printing one JSON line per change on stdout: `{"leader":true,"at":<ms>,"id":"<identity>"}`.
 * SIGTERM stops it the orderly way (the leadership is handed back), SIGKILL the other way.
 * Usage: node leadership-worker.js '<json>' where json is
 *   {"kind":"lease","kubeconfig":FILE,"namespace":NS,"identity":ID,"leaseDurationSeconds":N,
 *    "renewDeadlineMs":N,"retryPeriodMs":N}
 *   {"kind":"pg","target":<postgres StoreTarget>,"identity":ID,"retryMs":N,"checkMs":N}
 */
import { KubeConfig } from '@kubernetes/client-node';
import type { StoreTarget } from '../../src/config/store-schema.js';
import { createKubeApi } from '../../src/cluster/kube-client.js';
import { LeaseLeadership } from '../../src/cluster/lease-leadership.js';
import type { Leadership } from '../../src/lib/leadership.js';
import { AdvisoryLeadership } from '../../src/store/pg/advisory-leadership.js';

interface Args {
  kind: 'lease' | 'pg';
  identity: string;
  kubeconfig?: string;
  namespace?: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  target?: Extract<StoreTarget, { engine: 'postgres' }>;
  retryMs?: number;
  checkMs?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
let leadership: Leadership;
if (args.kind === 'lease') {
  const kc = new KubeConfig();
  kc.loadFromFile(args.kubeconfig!);
  leadership = new LeaseLeadership(createKubeApi(kc, { timeoutMs: 2000 }), {
    namespace: args.namespace!,
    identity: args.identity,
    leaseDurationSeconds: args.leaseDurationSeconds,
    renewDeadlineMs: args.renewDeadlineMs,
    retryPeriodMs: args.retryPeriodMs,
  });
} else {
  leadership = new AdvisoryLeadership(args.target!, { retryMs: args.retryMs, checkMs: args.checkMs });
}
leadership.onChange((leader) => {
  process.stdout.write(`${JSON.stringify({ leader, at: Date.now(), id: args.identity })}\n`);
});
process.once('SIGTERM', () => {
  void leadership.stop().then(() => process.exit(0));
});
await leadership.start();
process.stdout.write(`${JSON.stringify({ started: true, at: Date.now(), id: args.identity })}\n`);
setInterval(() => undefined, 60_000); // stay alive until a signal
