import { existsSync, readFileSync } from 'node:fs';
import { BadRequest } from '../../lib/errors.js';
import { probeProfile } from '../../openvpn/client-probe.js';
import { checkProfileOffline, checkPushedRoutes } from '../../services/client-check.js';
import type { Command } from 'commander';
import { exec } from '../../lib/exec.js';
import { findOverlaps, parseCidr } from '../../lib/cidr.js';
import { effectiveNetwork } from '../../services/network.js';
import { caStatus } from '../../services/ca-status.js';
import { withContext, type CliEnv } from '../env.js';

type Level = 'ok' | 'warn' | 'fail';
interface Finding {
  level: Level;
  check: string;
  detail: string;
}

/** `podgate doctor`: what would stop a server or a profile from working, checked without changing anything. */
export function register(program: Command, env: CliEnv): void {
  program
    .command('doctor')
    .description('check the config, the CA, the CRL, the network settings and the local openvpn')
    .option(
      '--client <profile>',
      'check a client profile instead: expiry, certificate, CA in force, endpoints, and a real handshake (routes pushed, port reachable)',
    )
    .option('--no-connect', 'with --client: skip the handshake')
    .action(async (o: { client?: string; connect: boolean }, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const findings: Finding[] = [];
        const add = (level: Level, check: string, detail: string) => findings.push({ level, check, detail });
        const print = (): void => {
          if (g.json) env.out(JSON.stringify(findings, null, 2));
          else for (const f of findings) env.out(`${f.level.padEnd(4)}  ${f.check.padEnd(14)}  ${f.detail}`);
          if (findings.some((f) => f.level === 'fail')) process.exitCode = 1;
        };
        if (o.client !== undefined) {
          let profile: string;
          try {
            profile = readFileSync(o.client, 'utf8');
          } catch (err) {
            throw new BadRequest(`--client: cannot read ${o.client}`, 'client', err);
          }
          findings.push(...await checkProfileOffline(ctx, profile));
          if (o.connect && !findings.some((f) => f.check === 'profile')) {
            const probe = await probeProfile(profile);
            if (probe.connected) {
              add('ok', 'handshake', `connected; tunnel address ${probe.ifconfig ?? '?'}`);
              findings.push(...await checkPushedRoutes(ctx, probe.routes));
            } else
              add(
                'fail',
                'handshake',
                `${probe.error ?? 'did not connect'}: is the server port reachable from here?`,
              );
          }
          return print();
        }
        add(
          ctx.dataDirNote ? 'warn' : 'ok',
          'data dir',
          ctx.dataDirNote ?? `${ctx.dataDir}: no access for group or others`,
        );
        add('ok', 'ca', `${ctx.ca.commonName} loaded from ${ctx.dataDir}`);
        for (const w of (await caStatus(ctx)).warnings) add('warn', 'ca', w);
        const crl = await ctx.revocation.currentCrl();
        if (!crl) add('fail', 'crl', 'no CRL has been signed');
        else {
          const days = (crl.nextUpdate.getTime() - ctx.now().getTime()) / 86_400_000;
          add(days < 7 ? 'warn' : 'ok', 'crl', `#${crl.number}, next update in ${days.toFixed(1)} days`);
        }
        const net = await effectiveNetwork(ctx.config, ctx.store);
        add(
          net.endpoints.length ? 'ok' : 'warn',
          'endpoints',
          net.endpoints.join(', ') || 'none: set vpn.endpoints or run k8s discover',
        );
        add(net.podCidrs.length ? 'ok' : 'warn', 'pod routes', net.podCidrs.join(', ') || 'none');
        add(net.serviceCidrs.length ? 'ok' : 'warn', 'service routes', net.serviceCidrs.join(', ') || 'none');
        const ranges = [
          { name: 'vpn.clientSubnet', cidr: parseCidr('vpn.clientSubnet', ctx.config.vpn.clientSubnet) },
          ...(ctx.config.vpn.clientSubnet6
            ? [
                {
                  name: 'vpn.clientSubnet6',
                  cidr: parseCidr('vpn.clientSubnet6', ctx.config.vpn.clientSubnet6),
                },
              ]
            : []),
          ...net.podCidrs.map((c) => ({ name: 'pod CIDR', cidr: parseCidr('pods', c) })),
          ...net.serviceCidrs.map((c) => ({ name: 'service CIDR', cidr: parseCidr('services', c) })),
          ...ctx.config.vpn.officeLans.map((c) => ({
            name: 'office LAN',
            cidr: parseCidr('vpn.officeLans', c),
          })),
        ];
        const overlaps = findOverlaps(ranges);
        add(overlaps.length ? 'fail' : 'ok', 'overlaps', overlaps.join('; ') || 'none');
        const ovpn = await exec(['openvpn', '--version'], { check: false }).catch(() => undefined);
        const version = ovpn?.stdout.split('\n')[0] ?? '';
        add(
          /OpenVPN 2\.[6-9]/.test(version) ? 'ok' : 'warn',
          'openvpn',
          version || 'not installed (needed for `server run`)',
        );
        add(
          existsSync('/dev/net/tun') ? 'ok' : 'warn',
          'tun',
          existsSync('/dev/net/tun') ? '/dev/net/tun present' : '/dev/net/tun missing',
        );
        print();
      });
    });
}
