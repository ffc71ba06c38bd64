/**
 * Steps that run the tunnel and check it: install/start the service (systemd unit when systemd is PID 1,
 * otherwise `openvpn --daemon --writepid`), wait for the tun device, check a pod route goes through it.
 */
import { AppError } from '../lib/errors.js';
import { openvpnArgs, systemdUnit, type GatewayLayout } from './layout.js';
import type { RemoteHost } from './remote.js';
import type { Step, StepContext, StepOutcome } from './step.js';

/** The pid of this gateway's running openvpn daemon (pid file + /proc cmdline check), if any. */
export async function daemonPid(host: RemoteHost, layout: GatewayLayout): Promise<number | undefined> {
  const pid = Number((await host.read(layout.pidFile))?.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  // a stale pid file may name a pid reused by something else: it must be openvpn with our profile
  const argv = ((await host.read(`/proc/${pid}/cmdline`)) ?? '').split('\0');
  return argv[0]?.endsWith('openvpn') && argv.includes(layout.profile) ? pid : undefined;
}

/** Stops the daemon (SIGTERM, then waits up to 10 s for it to go). */
export async function stopDaemon(
  host: RemoteHost,
  layout: GatewayLayout,
  sleep: (ms: number) => Promise<void>,
): Promise<number | undefined> {
  const pid = await daemonPid(host, layout);
  if (pid === undefined) return undefined;
  await host.run(['kill', '-TERM', '--', String(pid)], { check: false });
  for (let i = 0; i < 100 && (await daemonPid(host, layout)) !== undefined; i++) await sleep(100);
  return pid;
}

async function daemonService(ctx: StepContext): Promise<StepOutcome> {
  const { host, layout } = ctx;
  const pid = await daemonPid(host, layout);
  if (pid !== undefined && !ctx.state.restart)
    return { result: 'unchanged', detail: `openvpn running (daemon, pid ${pid})` };
  ctx.state.serviceWouldChange = true;
  if (ctx.dryRun)
    return {
      result: 'would change',
      detail: pid ? 'restart openvpn (new profile)' : 'start openvpn --daemon',
    };
  if (pid !== undefined) await stopDaemon(host, layout, ctx.sleep);
  await host.run(['install', '-d', '-m', '700', '--', layout.runDir]);
  await host.run([
    ctx.state.openvpnPath ?? 'openvpn',
    '--daemon',
    `podgate-gw-${layout.name}`,
    '--writepid',
    layout.pidFile,
    ...openvpnArgs(layout),
  ]);
  const started = await daemonPid(host, layout);
  if (started === undefined)
    throw new AppError(
      502,
      'service_failed',
      `openvpn did not stay up; log:\n${await logTail(host, layout)}`,
    );
  return { result: 'changed', detail: `${pid ? 'restarted' : 'started'} openvpn (daemon, pid ${started})` };
}

async function systemdService(ctx: StepContext): Promise<StepOutcome> {
  const { host, layout } = ctx;
  const unit = systemdUnit(
    layout,
    ctx.state.openvpnPath ?? '/usr/sbin/openvpn',
    ctx.state.iptablesPath ?? '/usr/sbin/iptables',
    ctx.lans,
  );
  const unitOk = await host.hasFile(layout.unitFile, unit, 0o644);
  const active =
    (await host.run(['systemctl', 'is-active', '--quiet', layout.unitName], { check: false })).code === 0;
  const enabled =
    (await host.run(['systemctl', 'is-enabled', '--quiet', layout.unitName], { check: false })).code === 0;
  if (unitOk && active && enabled && !ctx.state.restart)
    return { result: 'unchanged', detail: `${layout.unitName} active and enabled` };
  ctx.state.serviceWouldChange = true;
  if (ctx.dryRun)
    return {
      result: 'would change',
      detail: `${layout.unitName}: ${unitOk ? '' : 'write unit, '}${active ? 'restart' : 'enable and start'}`,
    };
  if (!unitOk) {
    await host.installFile(layout.unitFile, unit, 0o644);
    await host.run(['systemctl', 'daemon-reload']);
  }
  if (!enabled) await host.run(['systemctl', 'enable', '--quiet', layout.unitName]);
  await host.run(['systemctl', active ? 'restart' : 'start', layout.unitName]);
  return { result: 'changed', detail: `${layout.unitName} ${active ? 'restarted' : 'started'}` };
}

export const service: Step = {
  label: 'service',
  run: (ctx) => (ctx.state.manager === 'systemd' ? systemdService(ctx) : daemonService(ctx)),
};

/** The last lines of the gateway's openvpn log (for error messages and status). */
export async function logTail(host: RemoteHost, layout: GatewayLayout, lines = 15): Promise<string> {
  const r = await host.run(['tail', '-n', String(lines), '--', layout.logFile], { check: false });
  return r.code === 0 ? r.stdout.trimEnd() : `(no log at ${layout.logFile})`;
}

/** The tun device's IPv4 address, or undefined when it is not up. */
export async function tunnelAddress(host: RemoteHost, layout: GatewayLayout): Promise<string | undefined> {
  const r = await host.run(['ip', '-o', '-4', 'addr', 'show', 'dev', layout.dev], { check: false });
  return r.code === 0 ? /\binet\s+(\S+)/.exec(r.stdout)?.[1] : undefined;
}

/** Polls `probe` until it returns a value or `ctx.waitMs` passes. */
async function waitFor<T>(
  ctx: StepContext,
  probe: () => Promise<T | undefined>,
): Promise<{ value: T | undefined; waited: boolean }> {
  let value = await probe();
  if (value !== undefined || ctx.dryRun) return { value, waited: false };
  const deadline = Date.now() + ctx.waitMs;
  while (value === undefined && Date.now() < deadline) {
    await ctx.sleep(250);
    value = await probe();
  }
  return { value, waited: true };
}

export const tunnel: Step = {
  label: 'tunnel',
  async run(ctx) {
    const { host, layout } = ctx;
    const { value, waited } = await waitFor(ctx, () => tunnelAddress(host, layout));
    if (value !== undefined)
      return {
        result: waited || ctx.state.serviceWouldChange === true ? 'changed' : 'unchanged',
        detail: `${layout.dev} up, ${value}`,
      };
    if (ctx.dryRun) return { result: 'would change', detail: `${layout.dev} not up yet` };
    throw new AppError(
      504,
      'tunnel_down',
      `${layout.dev} did not come up within ${ctx.waitMs / 1000} s; openvpn log:\n${await logTail(host, layout)}`,
    );
  },
};

/** `ip route get` output when the route to `ip` leaves through the gateway's tun device. */
export async function routeVia(
  host: RemoteHost,
  layout: GatewayLayout,
  ip: string,
): Promise<string | undefined> {
  const r = await host.run(['ip', 'route', 'get', ip], { check: false });
  const line = r.stdout.split('\n')[0]?.trim() ?? '';
  return r.code === 0 && new RegExp(`\\bdev ${layout.dev}\\b`).test(line) ? line : undefined;
}

export const route: Step = {
  label: 'route',
  async run(ctx) {
    const probe = ctx.routeProbe;
    if (probe === undefined)
      return { result: 'skipped', detail: 'no pod or service range configured (vpn.routes)' };
    const { value, waited } = await waitFor(ctx, () => routeVia(ctx.host, ctx.layout, probe));
    if (value !== undefined)
      return {
        result: waited || ctx.state.serviceWouldChange === true ? 'changed' : 'unchanged',
        detail: value,
      };
    if (ctx.dryRun)
      return { result: 'would change', detail: `${probe} not routed via ${ctx.layout.dev} yet` };
    const r = await ctx.host.run(['ip', 'route', 'get', probe], { check: false });
    throw new AppError(
      504,
      'route_missing',
      `\`ip route get ${probe}\` does not go through ${ctx.layout.dev}: ${(r.stdout || r.stderr).trim()}`,
    );
  },
};
