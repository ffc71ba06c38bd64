/**
 * nftables script text for the `inet podgate` table: pure rendering, no I/O (the enforcer pipes it to
 * `nft -f -`, which applies a whole script as one transaction: all of it or nothing).
 *
 * forward hook, for packets that enter from the tun device:
 *   established/related → accept; DNS (udp+tcp 53) to the cluster DNS addresses → accept;
 *   `jump rules` (per rule: client set × destination sets → accept);
 *   then `enforce` counts and drops, `open` accepts.
 * Both families: every IPv4 set has an IPv6 twin named with a `6` suffix (`dns6`, `<id>_c6`, ...), and
 * each `ip` rule an `ip6` one. A logical set's element goes to the twin of its own family.
 */
import type { CompileDelta, RuleSets } from './compile.js';
import { isIpv6Key, parsePortKey, type PortElement } from './elements.js';
import type { AccessMode } from './types.js';

export const TABLE = 'inet podgate';

export interface TableSpec {
  mode: AccessMode;
  /** Interface name or nftables wildcard of the VPN device ("tun*"). */
  tun: string;
  dns: string[];
  /** Omitted (DNS only) when nothing good was compiled yet. */
  rules: RuleSets[];
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}\*?$/;

function portText(e: PortElement): string {
  const ports = e.from === e.to ? String(e.from) : `${e.from}-${e.to}`;
  // ICMP of IPv6 is its own protocol (58); a rule's `icmp` means ping in both families.
  const proto = e.proto === 'icmp' && isIpv6Key(e.addr) ? 'ipv6-icmp' : e.proto;
  return `${e.addr} . ${proto} . ${ports}`;
}

/** `add`/`delete element` lines for keys of one logical set: IPv4 keys into `set`, IPv6 into `<set>6`. */
function familyLines(op: 'add' | 'delete', set: string, keys: string[], text = (k: string) => k): string[] {
  const v4 = keys.filter((k) => !isIpv6Key(k));
  const v6 = keys.filter(isIpv6Key);
  return [...elementLines(op, set, v4.map(text)), ...elementLines(op, `${set}6`, v6.map(text))];
}

/** `add element` lines, a thousand elements per line (nft reads very long lines slowly). */
function elementLines(op: 'add' | 'delete', set: string, items: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < items.length; i += 1000)
    out.push(`${op} element ${TABLE} ${set} { ${items.slice(i, i + 1000).join(', ')} }`);
  return out;
}

/** The nft sets of one rule: three per family. */
const RULE_SETS = ['c', 'p', 'a', 'c6', 'p6', 'a6'] as const;

function setDecls(id: string, prefix = '  set '): string[] {
  return (['ipv4', 'ipv6'] as const).flatMap((f) => {
    const [t, x] = f === 'ipv4' ? ['ipv4_addr', ''] : ['ipv6_addr', '6'];
    return [
      `${prefix}${id}_c${x} { type ${t}; }`,
      `${prefix}${id}_p${x} { type ${t} . inet_proto . inet_service; flags interval; }`,
      `${prefix}${id}_a${x} { type ${t}; flags interval; }`,
    ];
  });
}

function ruleLines(id: string): string[] {
  return [
    `ip saddr @${id}_c ip daddr . meta l4proto . th dport @${id}_p accept`,
    `ip saddr @${id}_c ip daddr @${id}_a accept`,
    `ip6 saddr @${id}_c6 ip6 daddr . meta l4proto . th dport @${id}_p6 accept`,
    `ip6 saddr @${id}_c6 ip6 daddr @${id}_a6 accept`,
  ];
}

/**
 * The whole table, replacing any table of that name in the same transaction (`table` + `delete table`
 * + definition): the kernel swaps it at once, so there is no moment without a filter.
 */
export function renderTable(spec: TableSpec): string {
  if (!IFNAME.test(spec.tun)) throw new Error(`bad tun interface pattern ${spec.tun}`);
  const lines = [`table ${TABLE}`, `delete table ${TABLE}`, `table ${TABLE} {`, '  counter dropped { }'];
  lines.push('  set dns { type ipv4_addr; }', '  set dns6 { type ipv6_addr; }');
  for (const r of spec.rules) lines.push(...setDecls(r.id));
  lines.push('  chain rules {');
  for (const r of spec.rules) for (const l of ruleLines(r.id)) lines.push(`    ${l}`);
  lines.push('  }');
  lines.push('  chain forward {');
  lines.push('    type filter hook forward priority filter; policy accept;');
  lines.push(`    iifname != "${spec.tun}" accept`);
  if (spec.mode === 'open') lines.push('    accept');
  lines.push('    ct state established,related accept');
  lines.push('    ip daddr @dns meta l4proto { tcp, udp } th dport 53 accept');
  lines.push('    ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 53 accept');
  lines.push('    jump rules');
  lines.push('    counter name dropped drop');
  lines.push('  }', '}');
  lines.push(...familyLines('add', 'dns', spec.dns));
  for (const r of spec.rules) {
    lines.push(...familyLines('add', `${r.id}_c`, r.clients));
    lines.push(...elementLines('add', `${r.id}_p`, r.ports.filter((e) => !isIpv6Key(e.addr)).map(portText)));
    lines.push(...elementLines('add', `${r.id}_p6`, r.ports.filter((e) => isIpv6Key(e.addr)).map(portText)));
    lines.push(...familyLines('add', `${r.id}_a`, r.any));
  }
  return lines.join('\n') + '\n';
}

/**
 * A delta as one transaction: sets of new rules are created, the `rules` chain is refilled when rules
 * came or went (flush + add in the same transaction: never empty in between), elements are added and
 * deleted, and the sets of removed rules dropped last (after no chain line refers to them).
 */
export function renderDelta(delta: CompileDelta, ruleIds: readonly string[]): string {
  const lines: string[] = [];
  for (const id of delta.addedRules) lines.push(...setDecls(id, `add set ${TABLE} `));
  const reshaped = delta.addedRules.length + delta.removedRules.length > 0;
  if (reshaped) {
    lines.push(`flush chain ${TABLE} rules`);
    for (const id of ruleIds) for (const l of ruleLines(id)) lines.push(`add rule ${TABLE} rules ${l}`);
  }
  for (const c of delta.changes) {
    const text = (k: string): string => (c.kind === 'p' ? portText(parsePortKey(k)) : k);
    lines.push(...familyLines('delete', c.set, c.del, text));
    lines.push(...familyLines('add', c.set, c.add, text));
  }
  for (const id of delta.removedRules)
    for (const k of RULE_SETS) lines.push(`delete set ${TABLE} ${id}_${k}`);
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}
