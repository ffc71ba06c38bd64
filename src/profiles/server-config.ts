import { compileProfileTemplate } from './handlebars.js';
import { BadRequest } from '../lib/errors.js';
import {
  findOverlaps,
  holdingRange,
  intToIpv4,
  netmask,
  parseCidr,
  parseIp,
  type Cidr,
} from '../lib/cidr.js';
import type { VpnConfig } from '../config/schema.js';
import { assertSafeValue, checkRenderedConfig } from './guard.js';

/** Paths of the files the server reads; openvpn resolves them relative to its working directory. */
export interface ServerFiles {
  ca: string;
  cert: string;
  key: string;
  /** tls-crypt-v2 server key file (when vpn.controlChannel is tls-crypt-v2). */
  tlsCryptV2?: string;
  /** tls-crypt static key file (when vpn.controlChannel is tls-crypt). */
  tlsCrypt?: string;
}

/** PEM blocks written into the config itself instead of separate files (the pod image uses files). */
export interface ServerInline {
  caPem: string;
  certPem: string;
  keyPem: string;
  tlsCryptV2ServerKeyPem?: string;
  tlsCryptKeyPem?: string;
}

/** Everything server.conf needs; profiles do no I/O, so the template text arrives too. */
export interface ServerConfigInput {
  /** Template source of templates/server.conf.hbs (loaded by the caller). */
  template: string;
  vpn: Pick<
    VpnConfig,
    'clientSubnet' | 'proto' | 'port' | 'routes' | 'dns' | 'user' | 'group' | 'controlChannel'
  > &
    Partial<Pick<VpnConfig, 'clientSubnet6'>>;
  /** crl-verify file: always a file, openvpn re-reads it when it changes. */
  crlFile: string;
  managementSocket: string;
  managementPasswordFile: string;
  /**
   * `client-config-dir` the access agent keeps (one file per allowed device, with its stable address),
   * rendered with `ccd-exclusive`: a device without a file is refused at connect. Absent: no identity
   * check at connect (access not in use on this server yet).
   */
  clientConfigDir?: string;
  /**
   * With `clientConfigDir`: also render `ccd-exclusive` (default true). Off, the files only pin each
   * device's address (several server replicas give a device the same one) and a device without a file
   * still connects, with an address from openvpn's pool, which is then only the holding range at the
   * top of vpn.clientSubnet (`holdingRange`; the manager never allocates from it).
   */
  clientConfigExclusive?: boolean;
  /** Exactly one of files / inline. */
  files?: ServerFiles;
  inline?: ServerInline;
}

/** Directives server.conf.hbs may produce; anything else in the output is a bug and is refused. */
export const SERVER_DIRECTIVES: ReadonlySet<string> = new Set([
  'port',
  'proto',
  'dev',
  'topology',
  'server',
  'ifconfig-pool',
  'server-ipv6',
  'explicit-exit-notify',
  'multihome',
  'keepalive',
  'persist-key',
  'persist-tun',
  'user',
  'group',
  'remote-cert-tls',
  'tls-version-min',
  'data-ciphers',
  'dh',
  'allow-compression',
  'crl-verify',
  'management',
  'push',
  'verb',
  'ca',
  'cert',
  'key',
  'tls-crypt-v2',
  'tls-crypt',
  'client-config-dir',
  'ccd-exclusive',
  'sndbuf',
  'rcvbuf',
  'fast-io',
]);

/**
 * The throughput options server.conf.hbs sets beyond openvpn's defaults (the tunnel benchmark removes
 * them, and the pushed buffer sizes, to measure openvpn's defaults in the same run).
 */
export const TUNING_DIRECTIVES: ReadonlySet<string> = new Set(['sndbuf', 'rcvbuf', 'fast-io']);

const DOMAIN = /^[a-z0-9]([a-z0-9.-]{0,252})$/;
const ACCOUNT = /^[a-z_][a-z0-9_-]{0,31}$/;
// openvpn splits config lines on whitespace and treats quotes and backslashes specially.
const PATH = /^[A-Za-z0-9_./@+,:=-]{1,4096}$/;

let compiledFor: string | undefined;
let compiled: HandlebarsTemplateDelegate | undefined;
function compile(template: string): HandlebarsTemplateDelegate {
  if (compiledFor !== template || !compiled) {
    // noEscape: HTML escaping would turn the "=" of PEM base64 into "&#x3D;"; values are checked instead.
    compiled = compileProfileTemplate(template);
    compiledFor = template;
  }
  return compiled;
}

function checkPath(field: string, value: string): string {
  assertSafeValue(field, value);
  if (!PATH.test(value)) {
    throw new BadRequest(`${field} "${value}" must be a path without spaces, quotes or backslashes`, field);
  }
  return value;
}

function checkDomain(field: string, value: string): string {
  assertSafeValue(field, value);
  if (!DOMAIN.test(value)) throw new BadRequest(`${field} "${value}" is not a DNS domain`, field);
  return value;
}

/**
 * Every pushed route, parsed, de-duplicated, and checked not to overlap the client subnets: an overlap
 * would route VPN clients' own traffic back into the tunnel. IPv6 routes need vpn.clientSubnet6 (the
 * server's IPv6 pool); `routes6` is empty without it.
 */
export function pushedRoutes(vpn: ServerConfigInput['vpn']): {
  subnet: Cidr;
  subnet6?: Cidr;
  routes: Cidr[];
  routes6: Cidr[];
} {
  const subnet = parseCidr('vpn.clientSubnet', vpn.clientSubnet);
  if (subnet.family !== 'ipv4')
    throw new BadRequest('vpn.clientSubnet must be an IPv4 range', 'vpn.clientSubnet');
  const subnet6 = vpn.clientSubnet6 ? parseCidr('vpn.clientSubnet6', vpn.clientSubnet6) : undefined;
  if (subnet6 && (subnet6.family !== 'ipv6' || subnet6.prefix < 64 || subnet6.prefix > 124))
    throw new BadRequest('vpn.clientSubnet6 must be an IPv6 range from /64 to /124', 'vpn.clientSubnet6');
  const named: { name: string; cidr: Cidr }[] = [];
  for (const group of ['pods', 'services', 'extra'] as const) {
    vpn.routes[group].forEach((value, i) => {
      const field = `vpn.routes.${group}[${i}]`;
      const cidr = parseCidr(field, value);
      if (cidr.family !== 'ipv4' && !subnet6)
        throw new BadRequest(
          `${field} "${value}": an IPv6 route needs vpn.clientSubnet6 (the tunnel carries IPv4 only)`,
          field,
        );
      named.push({ name: field, cidr });
    });
  }
  const own = [{ name: 'vpn.clientSubnet', cidr: subnet }];
  if (subnet6) own.push({ name: 'vpn.clientSubnet6', cidr: subnet6 });
  const problems = named.flatMap((r) => own.flatMap((o) => findOverlaps([o, r])));
  if (problems.length > 0) throw new BadRequest(problems.join('; '), 'vpn.clientSubnet');
  const seen = new Set<string>();
  const unique = named.map((r) => r.cidr).filter((c) => !seen.has(c.text) && seen.add(c.text));
  return {
    subnet,
    ...(subnet6 ? { subnet6 } : {}),
    routes: unique.filter((c) => c.family === 'ipv4'),
    routes6: unique.filter((c) => c.family === 'ipv6'),
  };
}

/** Renders server.conf from the config and checks it with the injection guard before returning it. */
export function renderServerConfig(input: ServerConfigInput): string {
  const { vpn } = input;
  if (!input.files === !input.inline)
    throw new BadRequest('server config needs exactly one of files or inline');
  const { subnet, subnet6, routes, routes6 } = pushedRoutes(vpn);
  const dnsAll = vpn.dns.servers.map((s, i) => parseIp(`vpn.dns.servers[${i}]`, s));
  // A client reaches an IPv6 DNS server only through an IPv6 tunnel address.
  const dnsServers = dnsAll.filter((a) => !a.includes(':') || subnet6);
  const dnsServers6 = dnsServers.filter((a) => a.includes(':'));
  const dnsDomain = dnsServers.length > 0 ? checkDomain('vpn.dns.domain', vpn.dns.domain) : '';
  const searchDomainList = vpn.dns.searchDomains.map((d, i) => checkDomain(`vpn.dns.searchDomains[${i}]`, d));
  for (const f of ['user', 'group'] as const) {
    if (vpn[f] && !ACCOUNT.test(vpn[f]))
      throw new BadRequest(`vpn.${f} "${vpn[f]}" is not a system account name`, `vpn.${f}`);
  }
  if (!Number.isInteger(vpn.port) || vpn.port < 1 || vpn.port > 65535) {
    throw new BadRequest(`vpn.port ${String(vpn.port)} must be 1-65535`, 'vpn.port');
  }
  if (vpn.proto !== 'udp' && vpn.proto !== 'tcp')
    throw new BadRequest('vpn.proto must be udp or tcp', 'vpn.proto');
  const useV2 = vpn.controlChannel === 'tls-crypt-v2';
  const files = input.files && {
    ca: checkPath('files.ca', input.files.ca),
    cert: checkPath('files.cert', input.files.cert),
    key: checkPath('files.key', input.files.key),
    tlsCryptV2: useV2 ? checkPath('files.tlsCryptV2', input.files.tlsCryptV2 ?? '') : '',
    tlsCrypt: useV2 ? '' : checkPath('files.tlsCrypt', input.files.tlsCrypt ?? ''),
  };
  const blocks: Record<string, string> = {};
  let inline = null;
  if (input.inline) {
    const tlsPem = useV2 ? input.inline.tlsCryptV2ServerKeyPem : input.inline.tlsCryptKeyPem;
    if (!tlsPem) throw new BadRequest(`inline: the ${vpn.controlChannel} key is missing`, 'inline');
    Object.assign(blocks, { ca: input.inline.caPem, cert: input.inline.certPem, key: input.inline.keyPem });
    blocks[vpn.controlChannel] = tlsPem;
    inline = {
      caPem: input.inline.caPem.trim(),
      certPem: input.inline.certPem.trim(),
      keyPem: input.inline.keyPem.trim(),
      tlsCryptV2ServerKeyPem: useV2 ? tlsPem.trim() : '',
      tlsCryptKeyPem: useV2 ? '' : tlsPem.trim(),
    };
  }
  const ccdExclusive = Boolean(input.clientConfigDir) && input.clientConfigExclusive !== false;
  const holding = input.clientConfigDir && !ccdExclusive ? holdingRange(subnet.text) : undefined;
  const text = compile(input.template)({
    port: vpn.port,
    proto: vpn.proto,
    udp: vpn.proto === 'udp',
    subnetNetwork: subnet.network,
    subnetMask: netmask(subnet.prefix),
    subnet6: subnet6?.text ?? '',
    user: vpn.user,
    group: vpn.group,
    crlFile: checkPath('crlFile', input.crlFile),
    managementSocket: checkPath('managementSocket', input.managementSocket),
    managementPasswordFile: checkPath('managementPasswordFile', input.managementPasswordFile),
    clientConfigDir: input.clientConfigDir ? checkPath('clientConfigDir', input.clientConfigDir) : '',
    ccdExclusive,
    holdingPool: holding ? { first: intToIpv4(holding.first), last: intToIpv4(holding.last) } : null,
    routes: routes.map((r) => ({ network: r.network, mask: netmask(r.prefix) })),
    routes6: routes6.map((r) => r.text),
    dnsServers,
    dnsServers4: dnsServers.filter((a) => !a.includes(':')),
    dnsServers6,
    dnsDomain,
    searchDomains: searchDomainList.join(' '),
    searchDomainList,
    files: files ?? null,
    inline,
  });
  checkRenderedConfig(text, { directives: SERVER_DIRECTIVES, blocks });
  return text;
}
