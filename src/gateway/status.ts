/** `gateway status NAME`: service running, tunnel up, routes through it, last TLS handshake. Read-only. */
import { NotFound } from '../lib/errors.js';
import type { GatewayRecord, GatewayStore } from '../store/types.js';
import { gatewayLayout } from './layout.js';
import { RemoteHost } from './remote.js';
import type { SshSession } from './ssh-session.js';
import { daemonPid, tunnelAddress } from './steps-service.js';

export interface GatewayStatus {
  name: string;
  target: string;
  recordStatus: string;
  certSerial: string | null;
  service: { manager: 'systemd' | 'daemon' | 'none'; running: boolean; pid?: number };
  tunnel: { dev: string; up: boolean; address?: string };
  /** `ip route show dev <tun>` lines. */
  routes: string[];
  /** Time of the last "Peer Connection Initiated" in the openvpn log (host local time, as logged). */
  lastHandshake: string | null;
}

/** The last TLS handshake time in an openvpn log (`YYYY-MM-DD HH:MM:SS ... Peer Connection Initiated`). */
export function lastHandshake(log: string): string | null {
  let last: string | null = null;
  for (const line of log.split('\n')) {
    const m = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) .*Peer Connection Initiated/.exec(line);
    if (m) last = m[1]!;
  }
  return last;
}

export async function requireGateway(gateways: Pick<GatewayStore, 'getGateway'>, name: string): Promise<GatewayRecord> {
  const rec = await gateways.getGateway(gatewayLayout(name).name);
  if (!rec) throw new NotFound(`gateway ${name} is not known (provision it first)`);
  return rec;
}

export async function gatewayStatus(
  name: string,
  deps: { connect(): Promise<SshSession>; gateways: Pick<GatewayStore, 'getGateway'> },
): Promise<GatewayStatus> {
  const rec = await requireGateway(deps.gateways, name);
  const layout = gatewayLayout(rec.name);
  const session = await deps.connect();
  try {
    const host = await RemoteHost.open(session);
    let service: GatewayStatus['service'] = { manager: 'none', running: false };
    if ((await host.run(['test', '-f', layout.unitFile], { check: false })).code === 0) {
      const active = await host.run(['systemctl', 'is-active', '--quiet', layout.unitName], { check: false });
      service = { manager: 'systemd', running: active.code === 0 };
    } else {
      const pid = await daemonPid(host, layout);
      if (pid !== undefined || (await host.read(layout.pidFile)) !== undefined)
        service = { manager: 'daemon', running: pid !== undefined, ...(pid ? { pid } : {}) };
    }
    const address = await tunnelAddress(host, layout);
    const routes = address
      ? (await host.run(['ip', 'route', 'show', 'dev', layout.dev], { check: false })).stdout
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
      : [];
    const log = await host.run(['tail', '-n', '2000', '--', layout.logFile], { check: false });
    return {
      name: rec.name,
      target: rec.target,
      recordStatus: rec.status,
      certSerial: rec.certSerial,
      service,
      tunnel: { dev: layout.dev, up: address !== undefined, ...(address ? { address } : {}) },
      routes,
      lastHandshake: log.code === 0 ? lastHandshake(log.stdout) : null,
    };
  } finally {
    session.close();
  }
}

/** Human-readable lines for the CLI. */
export function formatStatus(s: GatewayStatus): string {
  return [
    `gateway ${s.name} (${s.target}): ${s.recordStatus}`,
    `  certificate: ${s.certSerial ?? 'none'}`,
    `  service: ${s.service.manager}, ${s.service.running ? `running${s.service.pid ? ` (pid ${s.service.pid})` : ''}` : 'not running'}`,
    `  tunnel: ${s.tunnel.dev} ${s.tunnel.up ? `up, ${s.tunnel.address}` : 'down'}`,
    `  routes: ${s.routes.length ? s.routes.join('; ') : 'none'}`,
    `  last handshake: ${s.lastHandshake ?? 'never'}`,
  ].join('\n');
}
