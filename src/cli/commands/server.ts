import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { BadRequest } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import { setLogLevel } from '../../lib/logger.js';
import { effectiveNetwork, vpnWithNetwork } from '../../services/network.js';
import { renderServerConfigFor, readManagementPassword, serverPaths } from '../../openvpn/server-files.js';
import { ManagementSessionsProvider, type LiveSession } from '../../openvpn/sessions-provider.js';
import { ServerSupervisor } from '../../openvpn/supervisor.js';
import { caExpiryWarning } from '../../services/ca-status.js';
import { globalOpts, table, withContext, type CliEnv } from '../env.js';
import { validateName } from '../../lib/names.js';
import { parseSince, UsageService } from '../../services/usage.js';
import type { Config } from '../../config/schema.js';
import { DB_FILE_NAME, SqliteStore } from '../../store/index.js';
import type { SettingsStore } from '../../store/types.js';

/**
 * The config the server runs with: routes, DNS and endpoints as configured, else what `k8s discover`
 * stored. `server config` reads the store only when it exists, so printing a config creates nothing.
 */
async function servedConfig(config: Config, settings?: SettingsStore): Promise<Config> {
  let store: SettingsStore | undefined = settings;
  let opened: SqliteStore | undefined;
  const dbFile = join(resolve(config.dataDir), DB_FILE_NAME);
  if (!store && existsSync(dbFile)) store = opened = SqliteStore.open(dbFile);
  try {
    return store
      ? { ...config, vpn: vpnWithNetwork(config.vpn, await effectiveNetwork(config, store)) }
      : config;
  } finally {
    await opened?.close();
  }
}

/** `podgate server config|run` and `podgate sessions`. */
export function register(program: Command, env: CliEnv): void {
  const server = program.command('server').description('the OpenVPN server on this host (local mode)');

  server
    .command('config')
    .description('print (or write) the server.conf that `server run` uses')
    .option('--out <file>', 'write it to this file (mode 0600) instead of stdout')
    .action(async (o: { out?: string }, cmd: Command) => {
      const config = env.loadConfig(globalOpts(cmd));
      const text = renderServerConfigFor(await servedConfig(config), serverPaths(config));
      if (!o.out) return env.out(text);
      const path = resolve(o.out);
      if (!existsSync(dirname(path)) || !statSync(dirname(path)).isDirectory()) {
        throw new BadRequest(`--out: directory ${dirname(path)} does not exist`, 'out');
      }
      writeFileAtomic(path, text, 0o600);
      env.out(`wrote ${path}`);
    });

  server
    .command('run')
    .description('run openvpn with the revocation agent until SIGTERM/SIGINT')
    .action(async (_o: unknown, cmd: Command) => {
      const config = env.loadConfig(globalOpts(cmd));
      setLogLevel(config.logLevel);
      const ctx = await env.openContext(config, env.contextDeps(config));
      const supervisor = new ServerSupervisor(
        { ...ctx, config: await servedConfig(config, ctx.store) },
        { caWarning: () => caExpiryWarning(ctx) },
      );
      try {
        const stopped = new Promise<void>((resolveStop) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolveStop();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        const swept = await ctx.users.revokeHeldByDisabled('system');
        if (swept.length > 0) env.err(`revoked ${swept.length} certificate(s) still held by disabled users`);
        await supervisor.start();
        env.err(
          `podgate server running (openvpn pid ${supervisor.pid ?? '?'}, ${config.vpn.proto}/${config.vpn.port})`,
        );
        await stopped;
      } finally {
        await supervisor.stop();
        await ctx.close();
      }
    });

  const sessionsCmd = program
    .command('sessions')
    .description(
      'live VPN sessions (from the management interface of `server run`, else every server replica in the cluster)',
    )
    .option(
      '--cluster',
      "every server replica's sessions (their reports in the cluster), even with `server run` here",
    )
    .action(async (o: { cluster?: boolean }, cmd: Command) => {
      const opts = globalOpts(cmd);
      const config = env.loadConfig(opts);
      const paths = serverPaths(config);
      const inCluster =
        o.cluster ||
        (!existsSync(paths.managementSocket) &&
          Boolean(config.kubernetes.kubeconfig || env.env.KUBECONFIG || env.env.KUBERNETES_SERVICE_HOST));
      const sessions = inCluster
        ? await clusterSessions(config, env.env)
        : await new ManagementSessionsProvider({
            socketPath: paths.managementSocket,
            password: readManagementPassword(paths),
          }).list();
      if (opts.json) return env.out(JSON.stringify(sessions, null, 2));
      if (sessions.length === 0) return env.out('no sessions');
      const rows = sessions.map((s) => [
        s.cid,
        ...(inCluster ? [s.replica ?? '-'] : []),
        s.commonName,
        s.realAddress,
        s.virtualAddress,
        s.connectedSince.toISOString(),
        String(s.bytesIn),
        String(s.bytesOut),
      ]);
      const head = ['CID', ...(inCluster ? ['REPLICA'] : []), 'COMMON NAME', 'REAL ADDRESS', 'VPN ADDRESS'];
      env.out(table([[...head, 'SINCE', 'IN', 'OUT'], ...rows]));
    });

  sessionsCmd
    .command('history')
    .description('recorded VPN sessions, newest first (kept sessions.retainDays days)')
    .option('--user <user>', 'only this user')
    .option('--since <when>', 'sessions open at or after: a duration (7d, 12h, 30m) or an ISO date', '7d')
    .option('--limit <n>', 'at most this many', '200')
    .action(async (o: { user?: string; since: string; limit: string }, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const user = o.user === undefined ? undefined : validateName('user', o.user);
        const since = parseSince('since', o.since, ctx.now());
        if (!/^\d{1,6}$/.test(o.limit) || Number(o.limit) < 1)
          throw new BadRequest('--limit must be a whole number from 1', 'limit');
        const rows = await new UsageService(ctx.store, ctx.now).history({
          ...(user ? { user } : {}),
          since,
          limit: Number(o.limit),
        });
        if (g.json) return env.out(JSON.stringify(rows, null, 2));
        if (rows.length === 0) return env.out('no sessions');
        env.out(
          table([
            [
              'START',
              'END',
              'USER',
              'DEVICE',
              'REPLICA',
              'REAL ADDRESS',
              'VPN ADDRESS',
              'IN',
              'OUT',
              'ENDED',
            ],
            ...rows.map((r) => [
              r.startedAt.toISOString(),
              r.endedAt?.toISOString() ?? '(connected)',
              r.userName ?? '-',
              r.deviceName ?? r.commonName,
              r.replica,
              r.realAddress,
              r.virtualAddress,
              String(r.bytesIn),
              String(r.bytesOut),
              r.endReason ?? '-',
            ]),
          ]),
        );
      });
    });
}

/** Every server replica's sessions (cluster/replica-sessions.ts); the Kubernetes client loads only here. */
async function clusterSessions(config: Config, processEnv: NodeJS.ProcessEnv): Promise<LiveSession[]> {
  const { connectKube } = await import('../../cluster/kube-connection.js');
  const { ReplicaSessionsProvider } = await import('../../cluster/replica-sessions.js');
  const connection = connectKube(config, processEnv);
  try {
    return await new ReplicaSessionsProvider({
      kube: () => connection.api,
      namespace: config.kubernetes.namespace,
    }).list();
  } finally {
    await connection.close();
  }
}
