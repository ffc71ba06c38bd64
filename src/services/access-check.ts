import type { AccessRule, Destination, NamespaceObject, PodObject, ServiceObject } from '../access/types.js';
import { matchesSelector } from '../access/label-selector.js';
import { BadRequest } from '../lib/errors.js';
import { contains, parseCidr, parseIp, isIp } from '../lib/cidr.js';

/** What `access check` is asked about. */
export type CheckTarget =
  | { kind: 'namespace'; namespace: string }
  | { kind: 'service'; namespace: string; name: string; port?: number; protocol?: 'tcp' | 'udp' }
  | { kind: 'ip'; ip: string; port?: number; protocol?: 'tcp' | 'udp' | 'icmp' };

/** Read-only cluster objects for selectors (namespace and Service labels) and addresses. */
export interface ClusterObjects {
  namespaces(): Promise<NamespaceObject[]>;
  services(): Promise<ServiceObject[]>;
  pods(): Promise<PodObject[]>;
  /** Ends the connection behind it (a short CLI command must not hang on an open tunnel). */
  close?(): Promise<void>;
}

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function portProto(field: string, text: string | undefined, protos: readonly string[]) {
  if (text === undefined) return {};
  const m = /^(\d{1,5})(?:\/([a-z]+))?$/.exec(text);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535 || (m[2] !== undefined && !protos.includes(m[2])))
    throw new BadRequest(
      `${field}: "${text}" is not PORT or PORT/${protos.join('|')} with PORT 1-65535`,
      field,
    );
  return { port, protocol: (m[2] ?? 'tcp') as 'tcp' | 'udp' };
}

/**
 * Parses `ns/NAME`, `svc/NS/NAME[:PORT[/tcp|udp]]`, `IP[:PORT/tcp|udp]` or, for IPv6, `IPV6` and
 * `[IPV6]:PORT[/tcp|udp]`; a 400 naming `destination` otherwise.
 */
export function parseCheckTarget(text: string): CheckTarget {
  const field = 'destination';
  const usage =
    'expected ns/NAMESPACE, svc/NAMESPACE/SERVICE[:PORT[/tcp|udp]], IP[:PORT[/tcp|udp]] or [IPV6]:PORT[/tcp|udp]';
  if (typeof text !== 'string' || text === '') throw new BadRequest(`${field} is required (${usage})`, field);
  if (text.startsWith('ns/')) {
    const namespace = text.slice(3);
    if (!LABEL.test(namespace))
      throw new BadRequest(`${field}: "${namespace}" is not a namespace name (${usage})`, field);
    return { kind: 'namespace', namespace };
  }
  if (text.startsWith('svc/')) {
    const [path, port] = text.slice(4).split(':', 2) as [string, string | undefined];
    const [namespace, name, extra] = path.split('/');
    if (!namespace || !name || extra !== undefined || !LABEL.test(namespace) || !LABEL.test(name))
      throw new BadRequest(`${field}: "${text}" is not svc/NAMESPACE/SERVICE (${usage})`, field);
    return { kind: 'service', namespace, name, ...portProto(field, port, ['tcp', 'udp']) };
  }
  const bad = () => new BadRequest(`${field}: "${text}" is not understood (${usage})`, field);
  const bracketed = /^\[([^\]]+)\](?::(.+))?$/.exec(text);
  let ip: string;
  let port: string | undefined;
  if (bracketed) {
    [ip, port] = [bracketed[1]!, bracketed[2]];
    if (!ip.includes(':')) throw bad(); // brackets are for IPv6 only
  } else if (text.split(':').length > 2)
    ip = text; // a bare IPv6 address, no port
  else [ip, port] = text.split(':', 2) as [string, string | undefined];
  if (!isIp(ip)) throw bad();
  // IPv6 in the form the API server writes addresses, so that it matches pods' and Services' ones
  const canonical = ip.includes(':') ? parseIp(field, ip) : ip;
  return { kind: 'ip', ip: canonical, ...portProto(field, port, ['tcp', 'udp', 'icmp']) };
}

/** What the cluster says about the target (undefined parts: unknown or no cluster). */
export interface TargetFacts {
  namespace?: NamespaceObject;
  service?: ServiceObject;
  pod?: PodObject;
}

/** The part of a rule's reach that covers the target, in words, or undefined when it does not. */
function destinationCovers(d: Destination, t: CheckTarget, facts: TargetFacts): string | undefined {
  const ns = t.kind === 'ip' ? (facts.pod?.namespace ?? facts.service?.namespace) : t.namespace;
  const nsLabels = facts.namespace?.labels;
  switch (d.kind) {
    case 'cidr':
      return t.kind === 'ip' && contains(parseCidr('cidr', d.cidr), t.ip) ? `cidr ${d.cidr}` : undefined;
    case 'namespace':
      if (ns === undefined) return undefined;
      if (d.names?.includes(ns)) return `namespace ${ns}`;
      if (d.selector && nsLabels && matchesSelector(d.selector, nsLabels))
        return `namespaces matching a selector (${ns})`;
      return undefined;
    case 'service': {
      if (t.kind === 'namespace' || d.namespace !== ns) return undefined;
      const svc = facts.service;
      const name = t.kind === 'service' ? t.name : svc?.name;
      if (name === undefined) return undefined;
      if (d.name === name) return `service ${ns}/${name}`;
      if (d.selector && svc && matchesSelector(d.selector, svc.labels))
        return `services matching a selector in ${ns} (${svc.name})`;
      return undefined;
    }
    case 'pod':
      if (t.kind !== 'ip' || !facts.pod || d.namespace !== facts.pod.namespace) return undefined;
      return matchesSelector(d.selector, facts.pod.labels)
        ? `pods matching a selector in ${d.namespace}`
        : undefined;
  }
}

/** Whether the rule's protocol and ports let the target's port through (no port asked: yes, with the limits named). */
function portsCover(rule: AccessRule, t: CheckTarget): boolean {
  const protocol = rule.protocol ?? 'any';
  const asked = t.kind === 'namespace' ? undefined : t.protocol;
  if (asked !== undefined && protocol !== 'any' && protocol !== asked) return false;
  const port = t.kind === 'namespace' ? undefined : t.port;
  if (port === undefined || !rule.ports) return true;
  return rule.ports.some((p) => p.from <= port && port <= p.to);
}

export function describeLimits(rule: AccessRule): string {
  const proto = rule.protocol ?? 'any';
  const ports = rule.ports?.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)).join(',');
  return ports ? `${proto} ${ports}` : proto === 'any' ? 'all protocols and ports' : `${proto}, every port`;
}

export interface RuleMatch {
  rule: string;
  covers: string;
  limits: string;
}

/** The rules (of those given, in order) that reach the target, each with what covers it. */
export function rulesReaching(rules: readonly AccessRule[], t: CheckTarget, facts: TargetFacts): RuleMatch[] {
  const out: RuleMatch[] = [];
  for (const r of rules) {
    if (!portsCover(r, t)) continue;
    for (const d of r.destinations) {
      const covers = destinationCovers(d, t, facts);
      if (covers) {
        out.push({ rule: r.name, covers, limits: describeLimits(r) });
        break;
      }
    }
  }
  return out;
}

/** Looks the target up among the cluster's objects (labels for selectors, the owner of an address). */
export async function targetFacts(t: CheckTarget, objects: ClusterObjects): Promise<TargetFacts> {
  const facts: TargetFacts = {};
  if (t.kind === 'service') {
    facts.service = (await objects.services()).find((s) => s.namespace === t.namespace && s.name === t.name);
  } else if (t.kind === 'ip') {
    facts.service = (await objects.services()).find((s) => s.clusterIPs.includes(t.ip));
    if (!facts.service) facts.pod = (await objects.pods()).find((p) => p.ips.includes(t.ip));
  }
  const ns = t.kind === 'ip' ? (facts.service?.namespace ?? facts.pod?.namespace) : t.namespace;
  if (ns !== undefined) facts.namespace = (await objects.namespaces()).find((n) => n.name === ns);
  return facts;
}
