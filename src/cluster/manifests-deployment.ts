import type { AccessMode } from '../access/types.js';
import type { Config } from '../config/schema.js';
import type { KubeObject } from './kube-api.js';
import { renderTable, TABLE } from '../access/nft-script.js';
import { CHECKSUM_ANNOTATION, LABELS, OBJECT_NAMES, POD_FILES, POD_PATHS } from './pod-layout.js';

/** Where the start script finds things; the pod's paths unless a test points it elsewhere. */
export interface StartScriptPaths {
  crl: string;
  crlSeed: string;
  serverConf: string;
}

/** How access is enforced from the pod's first packet. */
export interface StartScriptAccess {
  mode: AccessMode;
  /** The cluster DNS servers: the only destinations the DNS-only table lets clients reach (port 53). */
  dnsServers: readonly string[];
  /** The VPN device as nftables matches it (config access.tunInterface). Default "tun*". */
  tun?: string;
}

/**
 * The nft batch that installs podgate's table with no rule in it (the enforcer's own `renderTable`,
 * `enforce`, no rules: DNS to the cluster DNS servers only), preceded by `create table`, which fails
 * when the table exists and so rejects the whole batch: a table the agent already keeps (an openvpn
 * container restart: the pod's network namespace outlives its containers) is never replaced, and the
 * agent and this script cannot interleave.
 */
export function dnsOnlyTableBatch(dnsServers: readonly string[], tun = 'tun*'): string[] {
  const table = renderTable({ mode: 'enforce', tun, dns: [...dnsServers], rules: [] });
  return [`create table ${TABLE}`, ...table.trimEnd().split('\n')];
}

const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Start-up of the openvpn container, as POSIX sh inside the pod (this is the container's own entry,
 * not a command podgate runs): make /dev/net/tun when the runtime did not, insist on IPv4 forwarding
 * (without it clients reach nothing), MASQUERADE the client subnet so pods answer to the pod's address,
 * in `enforce` install the DNS-only table unless podgate's table is already there (fail closed from the
 * first packet, whether or not the API server answers: the agent widens it once it has rules and a
 * cluster view; the container exits rather than start openvpn without it), wait until the agent has
 * written the CRL file it verified, then exec openvpn. With `clientSubnet6` (dual stack) the same for
 * IPv6: forwarding (`net.ipv6.conf.all.forwarding`) and an ip6tables MASQUERADE (NAT66) of that range.
 */
export function openvpnStartScript(
  clientSubnet: string,
  paths: StartScriptPaths = {
    crl: POD_FILES.crl,
    crlSeed: `${POD_PATHS.crlSeedDir}/crl.pem`,
    serverConf: POD_FILES.serverConf,
  },
  access: StartScriptAccess = { mode: 'open', dnsServers: [] },
  clientSubnet6?: string,
): string {
  const table = TABLE;
  const enforce =
    access.mode === 'enforce'
      ? [
          `if nft list table ${table} >/dev/null 2>&1; then`,
          `  echo "podgate: access table ${table} already in place; keeping it" >&2`,
          'else',
          `  printf '%s\n' ${dnsOnlyTableBatch(access.dnsServers, access.tun).map(shQuote).join(' ')} | nft -f - || nft list table ${table} >/dev/null`,
          `  echo "podgate: access enforce: DNS only until the agent applies the rules" >&2`,
          'fi',
        ]
      : [];
  return [
    'set -eu',
    'if [ ! -c /dev/net/tun ]; then mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 600 /dev/net/tun; fi',
    'if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then echo 1 > /proc/sys/net/ipv4/ip_forward 2>/dev/null || true; fi',
    'if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then',
    '  echo "podgate: net.ipv4.ip_forward is 0 in the pod; allow the sysctl (kubelet --allowed-unsafe-sysctls=net.ipv4.ip_forward) or run the container privileged" >&2',
    '  exit 1',
    'fi',
    `iptables -t nat -C POSTROUTING -s ${clientSubnet} -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -s ${clientSubnet} -j MASQUERADE`,
    ...(clientSubnet6 ? ipv6Lines(clientSubnet6) : []),
    ...enforce,
    // The CRL file comes from the agent only, which verifies it against the CA first (a CRL of another
    // manager's CA would make openvpn accept revoked certificates): wait for it, never copy the Secret's.
    `i=0; while [ ! -s ${paths.crl} ]; do i=$((i+1)); if [ $i -gt 300 ]; then echo "podgate: no verified CRL from the agent in ${paths.crl} after 300 s (see the agent container's log)" >&2; exit 1; fi; sleep 1; done`,
    `exec openvpn --config ${paths.serverConf}`,
  ].join('\n');
}

/** Dual stack: IPv6 forwarding on (or exit), and NAT66 of the IPv6 client range, added once. */
function ipv6Lines(subnet6: string): string[] {
  const fwd = '/proc/sys/net/ipv6/conf/all/forwarding';
  return [
    `if [ "$(cat ${fwd})" != 1 ]; then echo 1 > ${fwd} 2>/dev/null || true; fi`,
    `if [ "$(cat ${fwd})" != 1 ]; then`,
    '  echo "podgate: net.ipv6.conf.all.forwarding is 0 in the pod; allow the sysctl (kubelet --allowed-unsafe-sysctls=net.ipv6.conf.all.forwarding) or run the container privileged" >&2',
    '  exit 1',
    'fi',
    `ip6tables -t nat -C POSTROUTING -s ${subnet6} -j MASQUERADE 2>/dev/null || ip6tables -t nat -A POSTROUTING -s ${subnet6} -j MASQUERADE`,
  ];
}

export interface DeploymentInput {
  config: Config;
  namespace: string;
  checksum: string;
  proto: 'UDP' | 'TCP';
  /** access.mode and the cluster DNS servers (the DNS-only table at pod start). Default: open. */
  access?: StartScriptAccess;
}

/**
 * One replica, Recreate (a second server would fight for the NodePort's clients and the client subnet):
 * `openvpn` (NET_ADMIN, readiness = management socket present) and the `agent` sidecar
 * (`podgate agent --cluster`) sharing the CRL and management emptyDirs.
 */
export function buildDeployment({ config, namespace, checksum, proto, access }: DeploymentInput): KubeObject {
  const image = config.kubernetes.image;
  const mounts = {
    server: { name: 'server', mountPath: POD_PATHS.serverDir, readOnly: true },
    config: { name: 'config', mountPath: POD_PATHS.configDir, readOnly: true },
    crlSeed: { name: 'crl-seed', mountPath: POD_PATHS.crlSeedDir, readOnly: true },
    crl: { name: 'crl', mountPath: POD_PATHS.crlDir },
    mgmt: { name: 'mgmt', mountPath: POD_PATHS.mgmtDir },
    ccd: { name: 'ccd', mountPath: POD_PATHS.ccdDir },
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: OBJECT_NAMES.app, namespace, labels: { ...LABELS } },
    spec: {
      replicas: 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { ...LABELS } },
      template: {
        metadata: { labels: { ...LABELS }, annotations: { [CHECKSUM_ANNOTATION]: checksum } },
        spec: {
          serviceAccountName: OBJECT_NAMES.agent,
          terminationGracePeriodSeconds: 10,
          // The pod's own network namespace starts with forwarding off and /proc/sys is read-only in the
          // containers, even with NET_ADMIN: the kubelet sets it when its --allowed-unsafe-sysctls allows
          // it (k8s/README.md "Running on a real node").
          securityContext: {
            sysctls: [
              { name: 'net.ipv4.ip_forward', value: '1' },
              ...(config.vpn.clientSubnet6 ? [{ name: 'net.ipv6.conf.all.forwarding', value: '1' }] : []),
            ],
          },
          containers: [
            {
              name: 'openvpn',
              image,
              command: [
                '/bin/sh',
                '-c',
                openvpnStartScript(config.vpn.clientSubnet, undefined, access, config.vpn.clientSubnet6),
              ],
              ports: [{ name: 'openvpn', containerPort: config.vpn.port, protocol: proto }],
              // The image's default user is non-root (`serve`); openvpn needs root for tun and iptables
              // and drops to `user nobody` itself after start.
              securityContext: {
                runAsUser: 0,
                capabilities: { add: ['NET_ADMIN', 'NET_RAW', 'MKNOD', 'SETUID', 'SETGID'], drop: ['ALL'] },
                allowPrivilegeEscalation: false,
              },
              readinessProbe: {
                exec: { command: ['/bin/sh', '-c', `test -S ${POD_FILES.managementSocket}`] },
                initialDelaySeconds: 2,
                periodSeconds: 5,
              },
              resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '256Mi' } },
              volumeMounts: [
                mounts.server,
                mounts.config,
                mounts.crlSeed,
                mounts.crl,
                mounts.mgmt,
                { ...mounts.ccd, readOnly: true },
              ],
            },
            {
              name: 'agent',
              image,
              command: ['podgate', 'agent', '--cluster', '--access'],
              env: [
                { name: 'PODGATE_KUBERNETES_NAMESPACE', value: namespace },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                // what the agent's access side needs before any bundle (config of its own it has none)
                { name: 'PODGATE_ACCESS_MODE_BEFORE_BUNDLE', value: access?.mode ?? 'open' },
                { name: 'PODGATE_ACCESS_TUN_INTERFACE', value: access?.tun ?? 'tun*' },
                { name: 'PODGATE_VPN_CLIENT_SUBNET', value: config.vpn.clientSubnet },
                ...(config.vpn.clientSubnet6
                  ? [{ name: 'PODGATE_VPN_CLIENT_SUBNET6', value: config.vpn.clientSubnet6 }]
                  : []),
                ...(access?.dnsServers.length
                  ? [{ name: 'PODGATE_VPN_DNS_SERVERS', value: access.dnsServers.join(',') }]
                  : []),
                // session history: how often the agent reports a `status 3` reading to the manager
                {
                  name: 'PODGATE_SESSIONS_RECORD_EVERY_SECONDS',
                  value: String(config.sessions.recordEverySeconds),
                },
                // "Check my connection": the probe listener on the pod IP, readable by the web app's pages
                { name: 'PODGATE_CONNECTION_CHECK_PORT', value: String(config.connectionCheck.port) },
                ...(config.web.publicUrl
                  ? [{ name: 'PODGATE_WEB_PUBLIC_URL', value: config.web.publicUrl }]
                  : []),
              ],
              // Root: the management socket is created by openvpn before it drops to `user nobody`, and
              // only its owner may connect. NET_ADMIN only: the agent keeps podgate's nftables table.
              securityContext: {
                runAsUser: 0,
                capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
              },
              resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              volumeMounts: [{ ...mounts.server }, mounts.crl, mounts.mgmt, mounts.ccd],
            },
          ],
          volumes: [
            { name: 'server', secret: { secretName: OBJECT_NAMES.serverSecret, defaultMode: 0o400 } },
            { name: 'config', configMap: { name: OBJECT_NAMES.app } },
            {
              name: 'crl-seed',
              secret: { secretName: OBJECT_NAMES.crlSecret, items: [{ key: 'crl.pem', path: 'crl.pem' }] },
            },
            { name: 'crl', emptyDir: {} },
            { name: 'mgmt', emptyDir: { medium: 'Memory' } },
            // the agent writes one file per client (fixed tunnel address); openvpn reads it at connect
            { name: 'ccd', emptyDir: { medium: 'Memory' } },
          ],
        },
      },
    },
  };
}
