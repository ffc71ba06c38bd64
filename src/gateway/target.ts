/**
 * `user@host[:port]` as given on the command line (TARGET of `gateway provision`, and
 * `kubernetes.sshBastion`). Validated strictly because the parts reach ssh2 and known_hosts lines.
 */
import { BadRequest } from '../lib/errors.js';
import { isIp } from '../lib/cidr.js';

export interface SshTarget {
  user: string;
  host: string;
  port: number;
}

/** POSIX-portable user names (useradd's default rule, plus upper case). */
const USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/;

/**
 * Parses `user@host[:port]`; IPv6 hosts go in brackets (`root@[fd00::1]:2222`). Port defaults to 22.
 * Throws a 400 naming `field` for anything else (no user, spaces, shell characters, port out of range).
 */
export function parseTarget(field: string, value: unknown): SshTarget {
  const bad = (why: string): never => {
    throw new BadRequest(`${field}: "${String(value)}" ${why} (expected user@host[:port])`, field);
  };
  if (typeof value !== 'string') return bad('is not a string');
  const at = value.lastIndexOf('@');
  if (at <= 0) return bad('has no user');
  const user = value.slice(0, at);
  let rest = value.slice(at + 1);
  if (!USER.test(user)) return bad('has an invalid user name');
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) return bad('has an unclosed "["');
    host = rest.slice(1, end);
    rest = rest.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return bad('has text after "]"');
    portText = rest === '' ? undefined : rest.slice(1);
    if (!isIp(host) || !host.includes(':')) return bad('has an invalid IPv6 address');
  } else {
    const parts = rest.split(':');
    if (parts.length > 2) return bad('has more than one ":" (bracket IPv6 addresses)');
    host = parts[0]!;
    portText = parts[1];
    if (!isIp(host) && !HOSTNAME.test(host)) return bad('has an invalid host name');
  }
  let port = 22;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) return bad('has an invalid port');
    port = Number(portText);
    if (port < 1 || port > 65535) return bad('has a port out of range');
  }
  return { user, host, port };
}

/** `host` for port 22, `[host]:port` otherwise: the key OpenSSH uses in known_hosts. */
export function knownHostsName(t: Pick<SshTarget, 'host' | 'port'>): string {
  return t.port === 22 ? t.host : `[${t.host}]:${t.port}`;
}

/** Back to `user@host:port` (IPv6 bracketed). */
export function formatTarget(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${t.user}@${host}:${t.port}`;
}
