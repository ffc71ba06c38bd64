import { existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import { readManagementPassword, serverPaths } from '../../openvpn/server-files.js';
import { ManagementSessionsProvider } from '../../openvpn/sessions-provider.js';
import { NotConnected } from '../../web/admin-data.js';
import { BadRequest } from '../../lib/errors.js';
import { logger, setLogLevel } from '../../lib/logger.js';
import { whileLeader } from '../../lib/leadership.js';
import { openLeadership } from '../leadership.js';
import type { Config } from '../../config/schema.js';
import { ensureFirstAdmin } from '../../services/bootstrap.js';
import { BackupScheduler } from '../../services/backup-schedule.js';
import type { AppContext } from '../../services/context.js';
import type { ClusterPort } from '../../web/cluster-port.js';
import type { SessionsProvider } from '../../web/sessions-provider.js';
import { startServer } from '../../web/server.js';
import { caExpiryWarning } from '../../services/ca-status.js';
import { startUpkeep } from '../../openvpn/upkeep.js';
import { openOidc } from '../../services/oidc.js';
import { scheduleOidcSync } from '../../services/oidc-sync.js';
import { globalOpts, type CliEnv } from '../env.js';
import { startAccessTimers } from '../../services/access-timers.js';
import { describeAccessDefaults } from './access.js';

/**
 * Optional real dependencies of the web app, chosen by the composition root (src/main.ts): the
 * management-interface SessionsProvider and the ClusterService. A CliEnv may carry this function;
 * without it the pages say "server not connected" / "cluster not connected".
 */
export type WebDepsFactory = (
  config: Config,
  ctx: AppContext,
  env: NodeJS.ProcessEnv,
) => Promise<{
  sessions?: SessionsProvider;
  cluster?: ClusterPort;
  /**
   * Background work that writes (audit rows, session history, the server's Secret and Deployment):
   * started on the replica that holds the leadership only, stopped when it loses it or shuts down (a
   * stop's Promise is awaited before the store closes).
   */
  leaderWork?: () => { stop(): void | Promise<void> }[];
}>;

/**
 * Local mode: sessions come from `podgate server run`'s management socket in the data dir, looked up
 * on every call, so `serve` and `server run` can start in any order; in cluster mode, without such a
 * socket, from every server replica's report (cluster/replica-sessions.ts). The cluster is wired when a
 * kubeconfig is configured or podgate runs inside a pod; its client is made on first use.
 */
export const defaultWebDeps: WebDepsFactory = async (config, ctx, env) => {
  const paths = serverPaths(config);
  const sessions: SessionsProvider = {
    list: () => local().list(),
    disconnect: (cid) => local().disconnect(cid),
  };
  function local(): ManagementSessionsProvider {
    if (!existsSync(paths.managementSocket)) throw new NotConnected();
    return new ManagementSessionsProvider({
      socketPath: paths.managementSocket,
      password: readManagementPassword(paths),
    });
  }
  const inCluster = Boolean(
    ctx.config.kubernetes.kubeconfig || env.KUBERNETES_SERVICE_HOST || env.KUBECONFIG,
  );
  if (!inCluster) return { sessions };
  // Loaded only when needed: the Kubernetes client adds about 70 MB of resident memory.
  const { clusterServiceFor } = await import('../../cluster/index.js');
  // The pods' agents report their sessions; serve records them as `server run` does its own.
  const { UsageService } = await import('../../services/usage.js');
  const cluster = clusterServiceFor(ctx, env, new UsageService(ctx.store, () => new Date()));
  // Sessions: `server run`'s beside this process when there is one, else every server replica's.
  const replicas = cluster.sessions();
  const both: SessionsProvider = {
    list: () => (existsSync(paths.managementSocket) ? local().list() : replicas.list()),
    disconnect: (cid) =>
      existsSync(paths.managementSocket) ? local().disconnect(cid) : replicas.disconnect(cid),
  };
  return {
    sessions: both,
    cluster,
    // Both write, so with several replicas only the leader runs them (one audit row per report, one
    // apply per change): the agent's reports become `revocation.effective` audit rows without waiting
    // for someone to open the cluster page, and the pod follows a renewed server certificate or a
    // `ca rotate`.
    leaderWork: () => [cluster.watchAgentStatus(15_000), cluster.watchServerMaterial()],
  };
};

const log = logger.child({ module: 'serve' });

/**
 * V8 grows the old generation by up to 4x its live size after a full collection when the process
 * allocates fast, and keeps those pages: after a burst of requests `serve` at 10,000 certificates held
 * 90-115 MB of heap around ~21 MB of live objects. A fixed 50% growth keeps the heap near what is live
 * (bench/web.ts: RSS after the load ~120 MB instead of ~150-190 MB; 20% gave ~115 MB but doubled the
 * device-creation latency under load) for more frequent full collections. Not a limit: the heap still
 * grows as far as the live objects need. V8 flags are refused in NODE_OPTIONS, so `serve` sets it
 * itself; a `--heap-growing-percent` given to node wins (0: V8's own dynamic factor).
 */
export const SERVE_HEAP_GROWING_PERCENT = 50;

function boundHeapGrowth(): void {
  if (process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) return;
  setFlagsFromString(`--heap-growing-percent=${SERVE_HEAP_GROWING_PERCENT}`);
}

/** `podgate serve`: first admin on an empty data dir, then the web app until SIGINT/SIGTERM. */
export function register(program: Command, env: CliEnv): void {
  program
    .command('serve')
    .description('serve the web app (creates the CA and the first admin on first start)')
    .option('--host <host>', 'listen address (default: web.host)')
    .option('--port <port>', 'listen port (default: web.port; 0 picks a free one)')
    .action(async (o: { host?: string; port?: string }, cmd: Command) => {
      boundHeapGrowth();
      const config = env.loadConfig(globalOpts(cmd));
      setLogLevel(config.logLevel);
      const port = o.port === undefined ? undefined : Number(o.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
        throw new BadRequest('--port must be 0-65535', 'port');
      // longLived: the CRL Secret publisher loads its client now, not on the first revocation
      const ctx = await env.openContext(config, env.contextDeps(config, { longLived: true }));
      if (ctx.dataDirNote) env.err(ctx.dataDirNote);
      try {
        const admin = await ensureFirstAdmin(ctx, env.env, {
          requirePasswordFile: Boolean(env.env.KUBERNETES_SERVICE_HOST),
        });
        if (admin?.generatedPassword) {
          env.out(`first admin: ${admin.user.name}`);
          env.out(`password (shown once, store it now): ${admin.generatedPassword}`);
        } else if (admin) {
          env.out(`first admin: ${admin.user.name} (password from PODGATE_ADMIN_PASSWORD_FILE)`);
        }
        if (admin) for (const line of await describeAccessDefaults(ctx, admin.access)) env.out(line);
        const swept = await ctx.users.revokeHeldByDisabled('system');
        if (swept.length > 0) env.err(`revoked ${swept.length} certificate(s) still held by disabled users`);
        const factory = (env as CliEnv & { webDeps?: WebDepsFactory }).webDeps ?? defaultWebDeps;
        const { leaderWork, ...extra } = await factory(config, ctx, env.env);
        // Checked here, on every replica, before the web app listens: a bad backup.passphraseFile
        // stops `serve` with exit 2 instead of failing later inside the leader's timers, unseen.
        const backups = config.backup.dir
          ? new BackupScheduler({ config, audit: ctx.store, now: ctx.now, clock: ctx.clock })
          : undefined;
        const oidc = openOidc(ctx);
        const server = await startServer({ ctx, ...extra, oidc, host: o.host, port });
        // The timers run on one replica only (on SQLite: this process). The CRL (local file and, in
        // cluster mode, the podgate-crl Secret) must not expire because no one asked for /readyz or
        // /crl.pem; renewed certificates leave on time. server run does the same.
        const elected = await openLeadership(config, env.env);
        elected.leadership.onChange((leader) =>
          log.info(
            { leader, by: elected.kind },
            leader ? 'this replica runs the timers' : 'timers stopped here',
          ),
        );
        await elected.leadership.start();
        // leading from the start: start-up has just done the upkeep's work. A later takeover checks at
        // once: the replica that led may have died with the CRL due.
        let ledAtStart = elected.leadership.isLeader();
        const timers = whileLeader(elected.leadership, () => {
          const firstMs = ledAtStart ? undefined : 0;
          ledAtStart = false;
          const watches = leaderWork?.() ?? [];
          const stopAccess = startAccessTimers(ctx);
          backups?.start();
          const upkeep = startUpkeep({
            clock: ctx.clock,
            everyMs: Math.min(3_600_000, config.vpn.crlRefreshSeconds * 1000),
            ...(firstMs === undefined ? {} : { firstMs }),
            revocation: ctx.revocation,
            caWarning: () => caExpiryWarning(ctx),
          });
          const stopSync = oidc
            ? scheduleOidcSync(
                // group changes the sync finds are published at once, not at the next poll
                () => oidc.sync().finally(() => ctx.access.changed()),
                config.auth.oidc!.syncIntervalHours,
              )
            : () => undefined;
          return async () => {
            stopSync();
            stopAccess();
            upkeep.cancel();
            // a sync still running writes through ctx.store, which the shutdown closes next
            await Promise.all([...watches.map((w) => w.stop()), backups?.stop()]);
          };
        });
        env.out(`podgate web app on ${server.url}`);
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            // The leadership goes as soon as this replica's timers have stopped, while the web server
            // still lets its requests in flight answer (up to 10 s): another replica takes the timers
            // over meanwhile instead of waiting for the drain; they never run on both.
            const handOver = timers.stop().then(() => elected.leadership.stop());
            void Promise.all([server.close(), handOver])
              .then(() => elected.close())
              .then(() => resolve());
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
      } finally {
        await ctx.close();
      }
    });
}
