import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { BadRequest } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import { setLogLevel } from '../../lib/logger.js';
import { forTunnel } from '../../lib/tunnel-subnets.js';
import type { Config } from '../../config/schema.js';
import {
  clusterServiceFor,
  formatStatus,
  type ClusterService,
  type DiscoveryResult,
} from '../../cluster/index.js';
import { createKubeApi, loadKubeConfig } from '../../cluster/kube-client.js';
import { manifestFiles } from '../../cluster/manifests.js';
import {
  MANAGER_SERVICE_ACCOUNT,
  managerRbac,
  parseSubject,
  serverNamespace,
} from '../../cluster/manager-rbac.js';
import { namespaceName } from '../../config/schema.js';
import { startClusterAgent } from '../../cluster/agent-runner.js';
import { webOrigin } from '../../lib/connection-probe.js';
import { POD_FILES, POD_PATHS } from '../../cluster/pod-layout.js';
import { RevocationAgent } from '../../openvpn/agent.js';
import { LocalBundleSource } from '../../openvpn/local-source.js';
import { serverDir } from '../../openvpn/local-publisher.js';
import { ManagementClient } from '../../openvpn/management-client.js';
import { readManagementPassword, serverPaths } from '../../openvpn/server-files.js';
import { StoreAgentReporter } from '../../openvpn/store-reporter.js';
import type { AppContext } from '../../services/context.js';
import { globalOpts, withContext, type CliEnv } from '../env.js';

/** Runs fn with a ClusterService and closes its API connection (an SSH bastion tunnel keeps the process alive). */
async function withCluster<T>(
  ctx: AppContext,
  env: CliEnv,
  fn: (svc: ClusterService) => Promise<T>,
): Promise<T> {
  const svc = clusterServiceFor(ctx, env.env);
  try {
    return await fn(svc);
  } finally {
    await svc.close();
  }
}

function discoveryLines(d: DiscoveryResult): string[] {
  const lines = [
    `pod CIDRs:     ${d.podCidrs.join(', ') || '(unknown)'}  [${d.podCidrSource}]`,
    `service CIDRs: ${d.serviceCidrs.join(', ') || '(unknown)'}  [${d.serviceCidrSource}]`,
    `cluster DNS:   ${d.dnsServer ?? '(unknown)'}${d.dnsServer6 ? ` ${d.dnsServer6}` : ''}  domain ${d.clusterDomain} [${d.clusterDomainSource}]`,
    `node IPs:      ${d.nodeIps.join(', ') || '(none)'}`,
  ];
  for (const s of [...d.sources.pods, ...d.sources.services])
    lines.push(`  source ${s.source}: ${s.cidrs.join(', ')}`);
  for (const w of d.warnings) lines.push(`warning: ${w}`);
  for (const o of d.overlaps) lines.push(`overlap: ${o}`);
  return lines;
}

/** Waits for SIGINT/SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function readSecretFile(field: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new BadRequest(
      `${field}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      field,
    );
  }
}

interface AgentOpts {
  cluster?: boolean;
  access?: boolean;
  caFile?: string;
  crlFile?: string;
  managementSocket?: string;
  managementPasswordFile?: string;
}

/** `podgate agent --cluster`: no store, no data dir; everything comes from the pod's mounts and the API. */
async function runClusterAgent(env: CliEnv, config: Config, o: AgentOpts): Promise<void> {
  const passwordFile = o.managementPasswordFile ?? POD_FILES.managementPassword;
  const running = await startClusterAgent({
    kube: createKubeApi(loadKubeConfig(config.kubernetes, env.env)),
    namespace: config.kubernetes.namespace,
    podName: env.env.POD_NAME ?? '',
    ...(env.env.POD_UID ? { podUid: env.env.POD_UID } : {}),
    caCertPem: readSecretFile('--ca-file', o.caFile ?? POD_FILES.ca),
    crlFile: o.crlFile ?? POD_FILES.crl,
    managementSocket: o.managementSocket ?? POD_FILES.managementSocket,
    managementPassword: existsSync(passwordFile)
      ? readSecretFile('--management-password-file', passwordFile).split('\n')[0]!.trim()
      : undefined,
    access: o.access
      ? {
          modeWithoutBundle: config.access.modeBeforeBundle,
          dnsServers: forTunnel(config.vpn, config.vpn.dns.servers),
          tun: config.access.tunInterface,
          ccdDir: POD_PATHS.ccdDir,
          clientSubnet: config.vpn.clientSubnet,
          clientSubnet6: config.vpn.clientSubnet6,
        }
      : undefined,
    probe: { port: config.connectionCheck.port, allowedOrigin: webOrigin(config.web.publicUrl) },
  });
  env.err(
    `podgate agent watching secret ${config.kubernetes.namespace}/podgate-crl (CRL #${running.agent.crlNumber ?? '-'} in force)`,
  );
  await untilSignal();
  await running.stop();
}

/** `podgate agent` (local mode): bundles from <dataDir>/server, reports as audit rows. */
async function runLocalAgent(env: CliEnv, cmd: Command, o: AgentOpts): Promise<void> {
  await withContext(
    env,
    cmd,
    async (ctx) => {
      const paths = serverPaths(ctx.config);
      const agent = new RevocationAgent({
        caCertPem: ctx.previousCa ? ctx.ca.certPem + ctx.previousCa.certPem : ctx.ca.certPem,
        crlFile: o.crlFile ?? paths.activeCrl,
        connect: () =>
          ManagementClient.connect({
            socketPath: o.managementSocket ?? paths.managementSocket,
            password: o.managementPasswordFile
              ? readSecretFile('--management-password-file', o.managementPasswordFile).split('\n')[0]!.trim()
              : readManagementPassword(paths),
          }),
        reporter: new StoreAgentReporter(ctx.store),
      });
      const source = new LocalBundleSource({ dir: serverDir(ctx.dataDir), onBundle: (b) => agent.apply(b) });
      await source.start();
      env.err(`podgate agent watching ${serverDir(ctx.dataDir)} (CRL #${agent.crlNumber ?? '-'} in force)`);
      await untilSignal();
      source.stop();
      agent.stop();
    },
    { quiet: false },
  );
}

/** `podgate k8s discover|manifests|deploy|status` and `podgate agent [--cluster]`. */
export function register(program: Command, env: CliEnv): void {
  const k8s = program
    .command('k8s')
    .description('the OpenVPN server in Kubernetes (namespace from kubernetes.namespace)');

  k8s
    .command('discover')
    .description('read pod/service CIDRs, cluster DNS and node IPs from the cluster and store them')
    .action(async (_o: unknown, cmd: Command) =>
      withContext(env, cmd, async (ctx, opts) => {
        const d = await withCluster(ctx, env, (svc) => svc.discover());
        env.out(opts.json ? JSON.stringify(d, null, 2) : discoveryLines(d).join('\n'));
        if (d.overlaps.length > 0) {
          throw new BadRequest(`address ranges overlap: ${d.overlaps.join('; ')}`, 'vpn.clientSubnet');
        }
      }),
    );

  k8s
    .command('manifests')
    .description('write the YAML for `kubectl apply -f DIR` (it contains the server key: keep it private)')
    .option('--out <dir>', 'directory to write one file per object into (created, files mode 0600)')
    .action(async (o: { out?: string }, cmd: Command) =>
      withContext(env, cmd, async (ctx) => {
        const files = await withCluster(ctx, env, (svc) => svc.manifests());
        if (!o.out) return env.out(files.map((f) => f.yaml).join('---\n'));
        const dir = resolve(o.out);
        if (existsSync(dir) && !statSync(dir).isDirectory())
          throw new BadRequest(`--out: ${dir} is not a directory`, 'out');
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        for (const f of files) writeFileAtomic(join(dir, f.name), f.yaml, 0o600);
        env.out(files.map((f) => join(dir, f.name)).join('\n'));
      }),
    );

  k8s
    .command('rbac')
    .description(
      "print what an admin applies so podgate may deploy into a namespace: the namespace and the manager's rights there (`| kubectl apply -f -`)",
    )
    .option('--namespace <ns>', 'the server namespace (default: kubernetes.namespace)')
    .option(
      '--service-account <ns/name>',
      'who runs deploy',
      `${MANAGER_SERVICE_ACCOUNT.namespace}/${MANAGER_SERVICE_ACCOUNT.name}`,
    )
    .action(async (o: { namespace?: string; serviceAccount: string }, cmd: Command) => {
      const config = env.loadConfig(globalOpts(cmd));
      const ns = o.namespace ?? config.kubernetes.namespace;
      const valid = namespaceName.safeParse(ns);
      if (!valid.success) throw new BadRequest(`--namespace: ${valid.error.issues[0]!.message}`, 'namespace');
      const subject = parseSubject(o.serviceAccount);
      if (!subject) throw new BadRequest('--service-account: must be NAMESPACE/NAME', 'service-account');
      const objects = [serverNamespace(ns), ...managerRbac(ns, subject)];
      env.out(
        manifestFiles(objects)
          .map((f) => f.yaml)
          .join('---\n'),
      );
    });

  k8s
    .command('deploy')
    .description('discover, then server-side apply every object and wait for the rollout (idempotent)')
    .option(
      '--take-over',
      "replace the server's objects even when another podgate manager's CA owns them (podgate.io/ca-key-id); its profiles stop working",
    )
    .action(async (o: { takeOver?: boolean }, cmd: Command) =>
      withContext(env, cmd, async (ctx, opts) => {
        const r = await withCluster(ctx, env, (svc) =>
          svc.deploy((line) => env.out(line), o.takeOver ? { takeOver: true } : {}),
        );
        if (o.takeOver)
          await ctx.store.appendAudit({
            actor: 'cli',
            action: 'k8s.take-over',
            target: ctx.config.kubernetes.namespace,
            result: 'ok',
            details: { caKeyId: ctx.ca.keyId },
          });
        if (opts.json) env.out(JSON.stringify(r, null, 2));
        const changed = r.objects.filter((x) => x.action !== 'unchanged').length;
        env.out(
          changed === 0
            ? 'deploy: no change'
            : `deploy: ${changed} object(s) changed, rollout ${r.rollout.ready ? 'ready' : 'not ready'}`,
        );
      }),
    );

  k8s
    .command('status')
    .description("the server's pods, endpoints and the agent's last applied CRL number")
    .action(async (_o: unknown, cmd: Command) =>
      withContext(env, cmd, async (ctx, opts) => {
        const s = await withCluster(ctx, env, (svc) => svc.status());
        env.out(opts.json ? JSON.stringify(s, null, 2) : formatStatus(s).join('\n'));
      }),
    );

  program
    .command('agent')
    .description(
      'apply revocations to a running openvpn (--cluster: from the podgate-crl Secret, in the server pod)',
    )
    .option('--cluster', 'watch the podgate-crl Secret through the Kubernetes API (in-cluster credentials)')
    .option('--ca-file <file>', `CA certificate (cluster default ${POD_FILES.ca})`)
    .option('--crl-file <file>', `the file openvpn's crl-verify reads (cluster default ${POD_FILES.crl})`)
    .option(
      '--management-socket <path>',
      `openvpn management socket (cluster default ${POD_FILES.managementSocket})`,
    )
    .option(
      '--management-password-file <file>',
      `management password (cluster default ${POD_FILES.managementPassword})`,
    )
    .option(
      '--access',
      `with --cluster: enforce access rules in this network namespace (nftables table, client-config-dir ${POD_PATHS.ccdDir}; the server pod)`,
    )
    .action(async (o: AgentOpts, cmd: Command) => {
      if (!o.cluster) return runLocalAgent(env, cmd, o);
      const config = env.loadConfig(globalOpts(cmd));
      setLogLevel(config.logLevel);
      return runClusterAgent(env, config, o);
    });
}
