/**
 * `gateway provision`: connect over SSH, then run every step in order, printing
 * `[label] detail ... changed|unchanged|would change|skipped`. Steps look before they act, so a second run
 * prints only `unchanged` and --dry-run changes nothing (no remote change, no certificate, no store write).
 * The first failure stops the run with the step, the command and its stderr.
 */
import ipaddr from 'ipaddr.js';
import { AppError, BadRequest, isAppError } from '../lib/errors.js';
import { findOverlaps, parseCidr, type Cidr } from '../lib/cidr.js';
import { logger } from '../lib/logger.js';
import type { GatewayStore } from '../store/types.js';
import { gatewayLayout, type GatewayLayout } from './layout.js';
import { RemoteHost } from './remote.js';
import type { SshSession } from './ssh-session.js';
import type { GatewayCertificates, ServiceManager, Step, StepContext, StepResult } from './step.js';
import { certificate, checkHost, profile } from './steps-host.js';
import { forwarding, nat } from './steps-network.js';
import { route, service, tunnel } from './steps-service.js';
import { formatTarget, type SshTarget } from './target.js';

const log = logger.child({ module: 'gateway' });

export const PROVISION_STEPS: readonly Step[] = [
  checkHost,
  certificate,
  profile,
  forwarding,
  nat,
  service,
  tunnel,
  route,
];

export interface ProvisionOptions {
  name: string;
  target: SshTarget;
  /** Office ranges to NAT (--lan). */
  lans: readonly string[];
  /** The cluster's pod and service ranges (vpn.routes); the first one's first address is probed. */
  clusterRanges: readonly string[];
  /** Ranges the office must not overlap (client subnet etc.), by name. */
  reservedRanges?: Record<string, string>;
  dryRun?: boolean;
  install?: boolean;
  serviceManager?: 'auto' | ServiceManager;
  waitMs?: number;
}

export interface ProvisionDeps {
  connect(): Promise<SshSession>;
  certs: GatewayCertificates;
  gateways: Pick<GatewayStore, 'upsertGateway' | 'getGateway'>;
  out(line: string): void;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export interface StepReport {
  label: string;
  result: StepResult;
  detail?: string;
}

/** A step failed: the message names the step and carries the command and stderr of the cause. */
export class StepFailed extends AppError {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    const inner = cause instanceof Error ? cause.message : String(cause);
    super(isAppError(cause) ? cause.status : 500, 'step_failed', `gateway step "${step}" failed: ${inner}`, {
      cause,
    });
  }
}

/** First usable address of a range (network + 1), for `ip route get`. */
export function firstAddress(c: Cidr): string {
  const bytes = ipaddr.parse(c.network).toByteArray();
  if (c.prefix < 32) {
    for (let i = bytes.length - 1; i >= 0; i--) {
      if (bytes[i]! < 255) {
        bytes[i]!++;
        break;
      }
      bytes[i] = 0;
    }
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** Validates everything before connecting: nothing is touched on bad input. */
export function validateProvision(o: ProvisionOptions): {
  layout: GatewayLayout;
  lans: Cidr[];
  routeProbe: string | undefined;
} {
  const layout = gatewayLayout(o.name);
  const lans = o.lans.map((l) => parseCidr('lan', l));
  for (const l of lans)
    if (l.family !== 'ipv4')
      throw new BadRequest(`lan: ${l.text} is IPv6; only IPv4 office ranges are NATed`, 'lan');
  const cluster = o.clusterRanges.map((r) => parseCidr('vpn.routes', r)).filter((c) => c.family === 'ipv4');
  const reserved = Object.entries(o.reservedRanges ?? {}).map(([name, r]) => ({
    name,
    cidr: parseCidr(name, r),
  }));
  const problems = findOverlaps([
    ...lans.map((cidr) => ({ name: 'lan', cidr })),
    ...cluster.map((cidr) => ({ name: 'cluster range', cidr })),
    ...reserved,
  ]).filter((p) => p.startsWith('lan '));
  if (problems.length > 0) throw new BadRequest(`lan: ${problems.join('; ')}`, 'lan');
  return { layout, lans, routeProbe: cluster[0] ? firstAddress(cluster[0]) : undefined };
}

export async function provisionGateway(
  o: ProvisionOptions,
  deps: ProvisionDeps,
): Promise<{ steps: StepReport[]; changed: boolean }> {
  const { layout, lans, routeProbe } = validateProvision(o);
  const dryRun = o.dryRun === true;
  const now = deps.now ?? (() => new Date());
  const target = formatTarget(o.target);
  deps.out(
    `${dryRun ? 'Plan for' : 'Provisioning'} gateway ${layout.name} on ${target}${dryRun ? ' (dry run: nothing will be changed)' : ''}`,
  );
  const session = await deps.connect();
  const steps: StepReport[] = [];
  const previous = await deps.gateways.getGateway(layout.name);
  const record = async (status: string, certSerial: string | null, details: Record<string, unknown>): Promise<void> => {
    if (!dryRun)
      await deps.gateways.upsertGateway({
        name: layout.name,
        target,
        certSerial,
        status,
        details,
        updatedAt: now(),
      });
  };
  let ctx: StepContext | undefined;
  let current = 'host';
  try {
    const host = await RemoteHost.open(session);
    record('provisioning', previous?.certSerial ?? null, {
      ...(previous?.details ?? {}),
      lans: lans.map((l) => l.text),
    });
    ctx = {
      host,
      layout,
      lans,
      routeProbe,
      dryRun,
      install: o.install === true,
      serviceManager: o.serviceManager ?? 'auto',
      certs: deps.certs,
      now,
      waitMs: o.waitMs ?? 60_000,
      sleep: deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      state: {},
    };
    for (const step of PROVISION_STEPS) {
      current = step.label;
      const outcome = await step.run(ctx);
      steps.push({ label: step.label, ...outcome });
      deps.out(`[${step.label}] ${outcome.detail ?? ''} ... ${outcome.result}`);
    }
  } catch (err) {
    deps.out(`[${current}] ... failed`);
    const failure = new StepFailed(current, err);
    log.debug({ gateway: layout.name, step: current, err: failure.message }, 'gateway provision failed');
    // a host refused before any step ran (no root, no sudo) leaves no record behind
    if (ctx)
      record('error', ctx.state.cert?.serial ?? previous?.certSerial ?? null, {
        ...(previous?.details ?? {}),
        lans: lans.map((l) => l.text),
        step: current,
        error: failure.message,
      });
    throw failure;
  } finally {
    session.close();
  }
  record('ready', ctx.state.cert?.serial ?? null, {
    lans: lans.map((l) => l.text),
    dev: layout.dev,
    serviceManager: ctx.state.manager,
    routeProbe,
    steps,
  });
  const changed = steps.some((s) => s.result === 'changed' || s.result === 'would change');
  deps.out(
    dryRun
      ? `Dry run: ${changed ? 'the steps marked "would change" would run' : 'nothing to do'}`
      : changed
        ? 'Gateway ready.'
        : 'Gateway ready; nothing changed.',
  );
  return { steps, changed };
}
