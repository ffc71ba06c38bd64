/** `podgate gateway provision|status|remove|list`: the office gateway host, provisioned over SSH. */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { BadRequest } from '../../lib/errors.js';
import { NAME_PATTERN } from '../../lib/names.js';
import { effectiveNetwork } from '../../services/network.js';
import type { AppContext } from '../../services/context.js';
import { connectSsh, type SshSession } from '../../gateway/ssh-session.js';
import { provisionGateway } from '../../gateway/provision.js';
import { removeGateway } from '../../gateway/remove.js';
import { formatStatus, gatewayStatus, requireGateway } from '../../gateway/status.js';
import type { GatewayCertificates } from '../../gateway/step.js';
import { parseTarget, type SshTarget } from '../../gateway/target.js';
import { table, withContext, type CliEnv } from '../env.js';

interface SshOpts {
  identity?: string;
  passphraseFile?: string;
}

function readSecretFile(field: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new BadRequest(
      `--${field} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      field,
    );
  }
}

/** A connect() for the deps objects: host keys from the data dir's known_hosts or pinned in config. */
function connector(
  ctx: AppContext,
  target: SshTarget,
  o: SshOpts,
  hostKeys: { acceptNew?: boolean; record?: boolean } = {},
): () => Promise<SshSession> {
  if (!o.identity) throw new BadRequest('--identity FILE (the SSH private key) is required', 'identity');
  const privateKey = readSecretFile('identity', o.identity);
  const passphrase = o.passphraseFile
    ? readSecretFile('passphrase-file', o.passphraseFile).replace(/\r?\n$/, '')
    : undefined;
  const knownHostsFile = resolve(ctx.config.gateway.knownHostsFile ?? join(ctx.dataDir, 'known_hosts'));
  return () =>
    connectSsh({
      target,
      privateKey,
      passphrase,
      hostKeys: { knownHostsFile, pinned: ctx.config.gateway.hostKeyFingerprints, ...hostKeys },
    });
}

/** Find and revoke, as the CLI caller: all `gateway remove` needs (it issues nothing, so it has no owner). */
function revoker(ctx: AppContext): Pick<GatewayCertificates, 'findValid' | 'revoke'> {
  return {
    findValid: async (cn) => ctx.store.getValidCertByCommonName(cn),
    revoke: async (serial, reason) => {
      await ctx.revocation.revoke({ actor: 'cli', serialOrName: serial, reason });
    },
  };
}

/** {@link revoker} plus issuing the gateway certificate to `owner` (`gateway provision --owner`). */
function certificates(ctx: AppContext, owner: string): GatewayCertificates {
  return {
    ...revoker(ctx),
    issue: (cn) =>
      ctx.devices.issue({ actor: 'cli', owner, commonName: cn, deviceName: cn, kind: 'gateway' }),
  };
}

/** status/remove default to the identity file recorded at provision time. */
async function recordedSsh(ctx: AppContext, name: string, o: SshOpts): Promise<{ target: SshTarget; ssh: SshOpts; }> {
  const rec = await requireGateway(ctx.store, name);
  const d = rec.details as { identityFile?: string; passphraseFile?: string };
  return {
    target: parseTarget('target', rec.target),
    ssh: { identity: o.identity ?? d.identityFile, passphraseFile: o.passphraseFile ?? d.passphraseFile },
  };
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function register(program: Command, env: CliEnv): void {
  const gw = program
    .command('gateway')
    .description('office gateway host: routes the office LAN into the cluster');
  registerProvision(gw, env);
  registerStatus(gw, env);
  registerRemove(gw, env);
  registerList(gw, env);
}

/** `gateway provision`: options are checked before anything connects; the SSH steps are in gateway/. */
function registerProvision(gw: Command, env: CliEnv): void {
  gw.command('provision <target>')
    .description(
      'provision (or re-check) a Linux host as the office gateway, over SSH (TARGET = user@host[:port])',
    )
    .option('--identity <file>', 'SSH private key')
    .option('--passphrase-file <file>', "file holding the private key's passphrase")
    .option('--name <name>', 'gateway name (default: the host name)')
    .option(
      '--lan <cidr>',
      'office range to NAT into the tunnel (repeatable; default vpn.officeLans)',
      collect,
      [],
    )
    .option('--owner <user>', 'user who owns the gateway certificate', 'admin')
    .option('--dry-run', 'print the plan, change nothing')
    .option('--accept-new-host-key', 'trust and record the host key of a host seen for the first time')
    .option(
      '--install',
      "install missing packages (openvpn, iptables, iproute2) with the host's package manager",
    )
    .option('--service <kind>', 'auto | systemd | daemon', 'auto')
    .option('--wait <seconds>', 'how long to wait for the tunnel and the pod route', '60')
    .action(async (targetText: string, o: ProvisionOpts, cmd: Command) => {
      const { target, name, wait } = checkProvisionOptions(targetText, o);
      await withContext(env, cmd, async (ctx) => {
        const net = await effectiveNetwork(ctx.config, ctx.store);
        const connect = connector(ctx, target, o, {
          acceptNew: o.acceptNewHostKey === true,
          record: !o.dryRun,
        });
        await provisionGateway(
          {
            name,
            target,
            lans: o.lan.length > 0 ? o.lan : ctx.config.vpn.officeLans,
            clusterRanges: [...net.podCidrs, ...net.serviceCidrs, ...net.extraRoutes],
            reservedRanges: { 'vpn.clientSubnet': ctx.config.vpn.clientSubnet },
            dryRun: o.dryRun === true,
            install: o.install === true,
            serviceManager: o.service as 'auto' | 'systemd' | 'daemon',
            waitMs: wait * 1000,
          },
          {
            connect,
            certs: certificates(ctx, o.owner),
            gateways: rememberingGateways(ctx, o),
            out: env.out,
            now: ctx.now,
          },
        );
      });
    });
}

interface ProvisionOpts extends SshOpts {
  name?: string;
  lan: string[];
  owner: string;
  dryRun?: boolean;
  acceptNewHostKey?: boolean;
  install?: boolean;
  service: string;
  wait: string;
}

/** Checks what `gateway provision` was given, before the data dir is opened or anything connects. */
function checkProvisionOptions(
  targetText: string,
  o: ProvisionOpts,
): { target: SshTarget; name: string; wait: number } {
  const target = parseTarget('target', targetText);
  const name = o.name ?? target.host.toLowerCase();
  if (!o.name && !NAME_PATTERN.test(name))
    throw new BadRequest(`--name is required: host "${target.host}" is not a valid gateway name`, 'name');
  if (!['auto', 'systemd', 'daemon'].includes(o.service))
    throw new BadRequest('--service must be auto, systemd or daemon', 'service');
  const wait = Number(o.wait);
  if (!Number.isFinite(wait) || wait < 0) throw new BadRequest('--wait must be a number of seconds', 'wait');
  return { target, name, wait };
}

/** The gateway records, remembering how to reach the host so that status/remove need no options. */
function rememberingGateways(ctx: AppContext, o: SshOpts) {
  return {
    getGateway: ctx.store.getGateway.bind(ctx.store),
    upsertGateway: (g: Parameters<AppContext['store']['upsertGateway']>[0]) =>
      ctx.store.upsertGateway({
        ...g,
        details: {
          ...g.details,
          identityFile: resolve(o.identity!),
          ...(o.passphraseFile ? { passphraseFile: resolve(o.passphraseFile) } : {}),
        },
      }),
  };
}

/** `gateway status`: read over SSH with the identity recorded at provision time. */
function registerStatus(gw: Command, env: CliEnv): void {
  gw.command('status <name>')
    .description('tunnel up, routes through it and the last handshake, read over SSH')
    .option('--identity <file>', 'SSH private key (default: the one used to provision)')
    .option('--passphrase-file <file>', "file holding the private key's passphrase")
    .action(async (name: string, o: SshOpts, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const { target, ssh } = await recordedSsh(ctx, name, o);
        const s = await gatewayStatus(name, { connect: connector(ctx, target, ssh), gateways: ctx.store });
        env.out(g.json ? JSON.stringify(s, null, 2) : formatStatus(s));
      });
    });
}

/** `gateway remove`: undo the host side (unless --local-only), revoke the certificate, forget it. */
function registerRemove(gw: Command, env: CliEnv): void {
  gw.command('remove <name>')
    .description('stop the tunnel, delete its files and NAT rules, revoke its certificate')
    .option('--identity <file>', 'SSH private key (default: the one used to provision)')
    .option('--passphrase-file <file>', "file holding the private key's passphrase")
    .option('--local-only', 'the host is gone: only revoke the certificate and forget the gateway')
    .action(async (name: string, o: SshOpts & { localOnly?: boolean }, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        const { target, ssh } = await recordedSsh(ctx, name, o);
        await removeGateway(
          name,
          {
            connect: o.localOnly
              ? () => Promise.reject(new Error('--local-only does not connect'))
              : connector(ctx, target, ssh),
            certs: revoker(ctx),
            gateways: ctx.store,
            out: env.out,
          },
          { localOnly: o.localOnly === true },
        );
      });
    });
}

/** `gateway list`: what the store knows, no SSH. */
function registerList(gw: Command, env: CliEnv): void {
  gw.command('list')
    .description('gateways known to this podgate')
    .action(async (_o: unknown, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const items = await ctx.store.listGateways();
        if (g.json) {
          env.out(
            JSON.stringify(
              items.map((r) => ({
                name: r.name,
                target: r.target,
                status: r.status,
                certSerial: r.certSerial,
                lans: r.details.lans ?? [],
                updatedAt: r.updatedAt.toISOString(),
              })),
              null,
              2,
            ),
          );
          return;
        }
        env.out(
          table([
            ['NAME', 'TARGET', 'STATUS', 'CERT SERIAL', 'UPDATED'],
            ...items.map((r) => [r.name, r.target, r.status, r.certSerial ?? '-', r.updatedAt.toISOString()]),
          ]),
        );
      });
    });
}
