/**
 * `gateway remove NAME`: stop the service, delete the NAT/forward rules, the profile, the sysctl file and
 * the unit, revoke the certificate, forget the gateway. Each part is skipped when already gone, so a
 * remove that failed half way can be rerun. IPv4 forwarding is left on (other things may rely on it).
 */
import type { Cidr } from '../lib/cidr.js';
import { parseCidr } from '../lib/cidr.js';
import type { GatewayStore } from '../store/types.js';
import { gatewayLayout, gatewayRules, ruleArgv, type GatewayLayout } from './layout.js';
import { RemoteHost } from './remote.js';
import type { SshSession } from './ssh-session.js';
import type { GatewayCertificates } from './step.js';
import { stopDaemon } from './steps-service.js';
import { requireGateway } from './status.js';

export interface RemoveDeps {
  connect(): Promise<SshSession>;
  certs: Pick<GatewayCertificates, 'findValid' | 'revoke'>;
  gateways: Pick<GatewayStore, 'getGateway' | 'deleteGateway'>;
  out(line: string): void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * `localOnly` (for a host that is gone for good): skip SSH, only revoke the certificate and forget the
 * gateway; whatever is left on the host can no longer connect once the CRL reaches the server.
 */
export async function removeGateway(
  name: string,
  deps: RemoveDeps,
  options: { localOnly?: boolean } = {},
): Promise<void> {
  const rec = await requireGateway(deps.gateways, name);
  const layout = gatewayLayout(rec.name);
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const lans: Cidr[] = (Array.isArray(rec.details.lans) ? (rec.details.lans as unknown[]) : []).map((l) =>
    parseCidr('lans', l),
  );
  const say = (label: string, detail: string, result: string): void =>
    deps.out(`[${label}] ${detail} ... ${result}`);
  deps.out(
    `Removing gateway ${layout.name} from ${rec.target}${options.localOnly ? ' (local only: the host is not touched)' : ''}`,
  );
  if (!options.localOnly) await cleanHost(deps, layout, lans, sleep, say);
  const valid = await deps.certs.findValid(layout.commonName);
  if (valid) await deps.certs.revoke(valid.serial, 'cessationOfOperation');
  say(
    'certificate',
    valid ? `${layout.commonName} serial ${valid.serial} revoked` : 'no valid certificate',
    valid ? 'changed' : 'unchanged',
  );
  await deps.gateways.deleteGateway(layout.name);
  say('record', `gateway ${layout.name} forgotten`, 'changed');
}

async function cleanHost(
  deps: RemoveDeps,
  layout: GatewayLayout,
  lans: Cidr[],
  sleep: (ms: number) => Promise<void>,
  say: (label: string, detail: string, result: string) => void,
): Promise<void> {
  const session = await deps.connect();
  try {
    const host = await RemoteHost.open(session);
    if ((await host.run(['test', '-f', layout.unitFile], { check: false })).code === 0) {
      await host.run(['systemctl', 'disable', '--now', '--quiet', layout.unitName], { check: false });
      await host.remove(layout.unitFile);
      await host.run(['systemctl', 'daemon-reload']);
      say('service', `${layout.unitName} stopped, disabled and deleted`, 'changed');
    } else {
      const pid = await stopDaemon(host, layout, sleep);
      say('service', pid ? `openvpn (pid ${pid}) stopped` : 'not running', pid ? 'changed' : 'unchanged');
    }
    let deleted = 0;
    for (const rule of gatewayRules(layout, lans)) {
      while ((await host.run(ruleArgv(rule, '-C'), { check: false })).code === 0) {
        await host.run(ruleArgv(rule, '-D'));
        deleted++;
      }
    }
    say('nat', `${deleted} rule(s) deleted`, deleted ? 'changed' : 'unchanged');
    const files = [layout.profile, layout.sysctlFile];
    const present: string[] = [];
    for (const f of files)
      if ((await host.run(['test', '-e', f], { check: false })).code === 0) present.push(f);
    await host.remove(...files);
    await host.run(['rm', '-rf', '--', layout.runDir]);
    await host.run(['rmdir', '--ignore-fail-on-non-empty', '--', layout.confDir], { check: false });
    say(
      'files',
      present.length ? `deleted ${present.join(', ')}` : 'none left',
      present.length ? 'changed' : 'unchanged',
    );
  } finally {
    session.close();
  }
}
