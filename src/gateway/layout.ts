/**
 * Where a gateway's pieces live on the remote host, and the names derived from the gateway name.
 * Kept in one place so provision, status and remove always agree.
 */
import { createHash } from 'node:crypto';
import { gatewayCommonName, validateName } from '../lib/names.js';
import type { Cidr } from '../lib/cidr.js';

export interface GatewayLayout {
  name: string;
  /** Certificate common name: `gw-<name>`. */
  commonName: string;
  /** The tun device: `pgw` + 8 hex of sha256(name), so it fits IFNAMSIZ whatever the name. */
  dev: string;
  confDir: string;
  profile: string;
  sysctlFile: string;
  runDir: string;
  pidFile: string;
  logFile: string;
  statusFile: string;
  unitName: string;
  unitFile: string;
  /** iptables comment that tags every rule of this gateway. */
  ruleComment: string;
}

/** Layout for a validated gateway name (≤ 61 characters, so `gw-<name>` is a valid common name). */
export function gatewayLayout(name: string): GatewayLayout {
  validateName('name', name);
  validateName('name', gatewayCommonName(name));
  const confDir = '/etc/openvpn/podgate';
  const runDir = `/run/podgate-gw/${name}`;
  const unitName = `podgate-gw-${name}.service`;
  return {
    name,
    commonName: gatewayCommonName(name),
    dev: 'pgw' + createHash('sha256').update(name).digest('hex').slice(0, 8),
    confDir,
    profile: `${confDir}/${name}.conf`,
    sysctlFile: `/etc/sysctl.d/60-podgate-${name}.conf`,
    runDir,
    pidFile: `${runDir}/openvpn.pid`,
    logFile: `${runDir}/openvpn.log`,
    statusFile: `${runDir}/openvpn.status`,
    unitName,
    unitFile: `/etc/systemd/system/${unitName}`,
    ruleComment: `podgate-gw-${name}`,
  };
}

/** One iptables rule as argv after `iptables -w` (the action flag is filled in by the caller). */
export interface Rule {
  table: 'nat' | 'filter';
  chain: string;
  spec: string[];
}

/**
 * The rules a gateway needs: MASQUERADE each office range out of the tunnel, and accept forwarding for it
 * (hosts with a DROP policy in FORWARD, e.g. with Docker, would otherwise drop the office's packets).
 */
export function gatewayRules(layout: GatewayLayout, lans: readonly Cidr[]): Rule[] {
  const tag = ['-m', 'comment', '--comment', layout.ruleComment];
  return lans.flatMap((lan) => [
    {
      table: 'nat' as const,
      chain: 'POSTROUTING',
      spec: ['-s', lan.text, '-o', layout.dev, ...tag, '-j', 'MASQUERADE'],
    },
    {
      table: 'filter' as const,
      chain: 'FORWARD',
      spec: ['-s', lan.text, '-o', layout.dev, ...tag, '-j', 'ACCEPT'],
    },
    {
      table: 'filter' as const,
      chain: 'FORWARD',
      spec: [
        '-d',
        lan.text,
        '-i',
        layout.dev,
        '-m',
        'conntrack',
        '--ctstate',
        'RELATED,ESTABLISHED',
        ...tag,
        '-j',
        'ACCEPT',
      ],
    },
  ]);
}

/** `iptables -w -t TABLE <action> CHAIN SPEC...` */
export function ruleArgv(rule: Rule, action: '-C' | '-A' | '-D'): string[] {
  return ['iptables', '-w', '-t', rule.table, action, rule.chain, ...rule.spec];
}

/** The openvpn command line for this gateway (daemon mode adds --daemon/--writepid). */
export function openvpnArgs(layout: GatewayLayout): string[] {
  // command-line options after --config override the profile's `dev tun`
  return [
    '--config',
    layout.profile,
    '--dev',
    layout.dev,
    '--dev-type',
    'tun',
    '--cd',
    layout.confDir,
    '--log-append',
    layout.logFile,
    '--status',
    layout.statusFile,
    '10',
  ];
}

/**
 * A systemd unit. It also re-applies the iptables rules at start (delete-then-add, so never twice) and
 * removes them at stop, so the NAT survives a reboot. Values are validated names and CIDRs: nothing in
 * them needs systemd quoting (no spaces, quotes, backslashes or `%`).
 */
export function systemdUnit(
  layout: GatewayLayout,
  openvpnPath: string,
  iptablesPath: string,
  lans: readonly Cidr[],
): string {
  const rules = gatewayRules(layout, lans);
  const ipt = (r: Rule, action: '-A' | '-D'): string =>
    [iptablesPath, ...ruleArgv(r, action).slice(1)].join(' ');
  return [
    '[Unit]',
    `Description=podgate office gateway ${layout.name}`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `RuntimeDirectory=podgate-gw/${layout.name}`,
    'RuntimeDirectoryMode=0700',
    ...rules.map((r) => `ExecStartPre=-${ipt(r, '-D')}`),
    ...rules.map((r) => `ExecStartPre=${ipt(r, '-A')}`),
    `ExecStart=${openvpnPath} ${openvpnArgs(layout).join(' ')}`,
    ...rules.map((r) => `ExecStopPost=-${ipt(r, '-D')}`),
    'Restart=on-failure',
    'RestartSec=5',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
