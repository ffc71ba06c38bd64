/**
 * The rule compiler: resolved rules + the live cluster objects → per rule, the client addresses and the
 * destination elements an enforcer installs. Pure (no I/O) and incremental: a cluster event or a new set
 * of rules returns the element additions and deletions per set, never a rebuilt ruleset.
 *
 * Every element remembers which objects contributed it (reference counts per set), so an element two
 * objects or two destinations give stays until the last one is gone. Pods are keyed by uid, never by
 * address: a deleted pod's address leaves exactly the sets that pod put it in, and a new pod that gets
 * the same address enters only the sets it matches itself.
 */
import { matchesSelector } from './label-selector.js';
import {
  coveredByCidr,
  isIpAddress,
  parsePortKey,
  portKey,
  ruleSetId,
  ruleShape,
  servicePorts,
  wholeAddress,
  type PortElement,
  type RuleShape,
  type SetKind,
} from './elements.js';
import type {
  ClusterEvent,
  Destination,
  NamespaceObject,
  PodObject,
  ResolvedRule,
  ServiceObject,
} from './types.js';

/** Additions and deletions for one set, as keys: addresses for `c`/`a` sets, {@link portKey} for `p`. */
export interface SetChange {
  set: string;
  kind: SetKind;
  add: string[];
  del: string[];
}

/** What changed after one call: sets to create or drop (whole rules), and element changes. */
export interface CompileDelta {
  /** Rule set ids whose three sets must be created (before their elements are added). */
  addedRules: string[];
  /** Rule set ids whose sets must be dropped (their elements go with them). */
  removedRules: string[];
  changes: SetChange[];
}

/** One rule's sets in full, for an initial load or a table replacement. */
export interface RuleSets {
  id: string;
  name: string;
  clients: string[];
  ports: PortElement[];
  any: string[];
}

interface CompiledRule {
  rule: ResolvedRule;
  id: string;
  shape: RuleShape;
}

/** Per set: element key → how many contributions hold it. */
type Counts = Map<string, number>;

const svcKey = (namespace: string, name: string): string => `${namespace}/${name}`;

export class AccessCompiler {
  private rules = new Map<string, CompiledRule>();
  /** Rules that can reach into a namespace by name, and those with namespace selectors (any namespace). */
  private rulesByNs = new Map<string, CompiledRule[]>();
  private rulesAnyNs: CompiledRule[] = [];
  private readonly namespaces = new Map<string, NamespaceObject>();
  private readonly pods = new Map<string, PodObject>();
  private readonly services = new Map<string, ServiceObject>();
  /** Namespace → pod uids and Service keys in it (events touch one namespace, not the cluster). */
  private readonly podsIn = new Map<string, Set<string>>();
  private readonly servicesIn = new Map<string, Set<string>>();
  /** Set name → element counts. */
  private readonly sets = new Map<string, Counts>();
  /** Contributor ("pod:<uid>", "svc:<ns>/<name>", "cidr", "clients") → set name → keys it gave. */
  private readonly given = new Map<string, Map<string, string[]>>();
  /** Names seen since `resync-start`, or undefined outside a re-list. */
  private resync: Set<string> | undefined;
  private pending = new Map<string, { kind: SetKind; add: Set<string>; del: Set<string> }>();

  /** Replaces the rules; returns what changed (new/removed rules' sets and every element difference). */
  setRules(rules: readonly ResolvedRule[]): CompileDelta {
    const next = new Map<string, CompiledRule>();
    for (const rule of rules) {
      next.set(rule.name, {
        rule: { ...rule, clients: rule.clients.filter(isIpAddress) },
        id: ruleSetId(rule.name),
        shape: ruleShape(rule),
      });
    }
    const addedRules = [...next.values()].filter((r) => !this.rules.has(r.rule.name)).map((r) => r.id);
    const removedRules = [...this.rules.values()].filter((r) => !next.has(r.rule.name)).map((r) => r.id);
    this.rules = next;
    this.indexRules();
    for (const id of removedRules) for (const k of ['c', 'p', 'a']) this.sets.delete(`${id}_${k}`);
    this.recomputeAll();
    const delta = this.takeDelta();
    const gone = new Set(removedRules);
    return {
      addedRules,
      removedRules,
      changes: delta.changes.filter((c) => !gone.has(c.set.slice(0, -2))),
    };
  }

  private indexRules(): void {
    this.rulesByNs = new Map();
    this.rulesAnyNs = [];
    for (const r of this.rules.values()) {
      const names = new Set<string>();
      let any = false;
      for (const d of r.rule.destinations) {
        if (d.kind === 'namespace') {
          for (const n of d.names ?? []) names.add(n);
          if (d.selector !== undefined) any = true;
        } else if (d.kind !== 'cidr') names.add(d.namespace);
      }
      if (any) this.rulesAnyNs.push(r);
      else for (const n of names) this.rulesByNs.set(n, [...(this.rulesByNs.get(n) ?? []), r]);
    }
  }

  /** Rules that may match an object in `namespace` (a superset; each is still checked). */
  private candidates(namespace: string): CompiledRule[] {
    const named = this.rulesByNs.get(namespace) ?? [];
    return this.rulesAnyNs.length === 0 ? named : [...named, ...this.rulesAnyNs];
  }

  /** Applies one cluster event; returns the element changes it caused. */
  apply(e: ClusterEvent): CompileDelta {
    switch (e.type) {
      case 'resync-start':
        this.resync = new Set();
        break;
      case 'resync-done':
        this.finishResync();
        break;
      case 'upsert':
        this.resync?.add(objectKey(e));
        if (e.kind === 'namespace') this.upsertNamespace(e.object);
        else if (e.kind === 'pod') this.upsertPod(e.object);
        else this.upsertService(e.object);
        break;
      case 'delete':
        if (e.kind === 'namespace') this.deleteNamespace(e.name);
        else if (e.kind === 'pod') this.deletePod(e.uid);
        else this.deleteService(e.namespace, e.name);
        break;
    }
    return this.takeDelta();
  }

  /** Every rule's sets in full (for the initial load and a table replacement). */
  snapshot(): RuleSets[] {
    return [...this.rules.values()].map((r) => ({
      id: r.id,
      name: r.rule.name,
      clients: this.keys(`${r.id}_c`),
      ports: this.keys(`${r.id}_p`).map(parsePortKey),
      any: this.keys(`${r.id}_a`),
    }));
  }

  /** Set-name stems of the rules, in bundle order (the `rules` chain lists them in this order). */
  ruleIds(): string[] {
    return [...this.rules.values()].map((r) => r.id);
  }

  /** True when `key` is in set `set` now. */
  has(set: string, key: string): boolean {
    return (this.sets.get(set)?.get(key) ?? 0) > 0;
  }

  /** Sizes, for status and benchmarks. */
  get counts(): { rules: number; pods: number; services: number; namespaces: number; elements: number } {
    let elements = 0;
    for (const s of this.sets.values()) elements += s.size;
    return {
      rules: this.rules.size,
      pods: this.pods.size,
      services: this.services.size,
      namespaces: this.namespaces.size,
      elements,
    };
  }

  private keys(set: string): string[] {
    return [...(this.sets.get(set)?.keys() ?? [])].sort();
  }

  private upsertNamespace(ns: NamespaceObject): void {
    const old = this.namespaces.get(ns.name);
    this.namespaces.set(ns.name, ns);
    if (old && JSON.stringify(old.labels) === JSON.stringify(ns.labels)) return; // nothing rules look at
    this.recomputeNamespace(ns.name);
  }

  private deleteNamespace(name: string): void {
    this.namespaces.delete(name);
    this.recomputeNamespace(name);
  }

  private upsertPod(pod: PodObject): void {
    const old = this.pods.get(pod.uid);
    if (old && old.namespace !== pod.namespace) index(this.podsIn, old.namespace, pod.uid, false);
    this.pods.set(pod.uid, pod);
    index(this.podsIn, pod.namespace, pod.uid, true);
    this.recomputePod(pod);
  }

  private deletePod(uid: string): void {
    const old = this.pods.get(uid);
    if (old) index(this.podsIn, old.namespace, uid, false);
    this.pods.delete(uid);
    this.give(`pod:${uid}`, new Map());
  }

  private upsertService(svc: ServiceObject): void {
    const key = svcKey(svc.namespace, svc.name);
    const old = this.services.get(key);
    this.services.set(key, svc);
    index(this.servicesIn, svc.namespace, key, true);
    this.recomputeService(svc);
    // Only pods its old or new selector picks can gain or lose a destination through it.
    this.recomputeBacking(svc.namespace, [old?.selector ?? null, svc.selector]);
  }

  private deleteService(namespace: string, name: string): void {
    const key = svcKey(namespace, name);
    const old = this.services.get(key);
    this.services.delete(key);
    index(this.servicesIn, namespace, key, false);
    this.give(`svc:${key}`, new Map());
    this.recomputeBacking(namespace, [old?.selector ?? null]);
  }

  private recomputeBacking(namespace: string, selectors: (Record<string, string> | null)[]): void {
    const live = selectors.filter(
      (x): x is Record<string, string> => x !== null && Object.keys(x).length > 0,
    );
    if (live.length === 0) return;
    for (const pod of this.inNamespace(this.podsIn, this.pods, namespace))
      if (live.some((sel) => matchesSelector({ matchLabels: sel }, pod.labels))) this.recomputePod(pod);
  }

  private inNamespace<T>(ids: Map<string, Set<string>>, all: Map<string, T>, ns: string): T[] {
    return [...(ids.get(ns) ?? [])].flatMap((id) => all.get(id) ?? []);
  }

  private finishResync(): void {
    const seen = this.resync;
    this.resync = undefined;
    if (!seen) return;
    for (const name of [...this.namespaces.keys()]) if (!seen.has(`ns:${name}`)) this.deleteNamespace(name);
    for (const uid of [...this.pods.keys()]) if (!seen.has(`pod:${uid}`)) this.deletePod(uid);
    for (const [k, s] of [...this.services])
      if (!seen.has(`svc:${k}`)) this.deleteService(s.namespace, s.name);
  }

  private recomputeAll(): void {
    const cidr = new Map<string, string[]>();
    const clients = new Map<string, string[]>();
    for (const r of this.rules.values()) {
      clients.set(`${r.id}_c`, r.rule.clients);
      for (const c of r.shape.cidrs)
        addWhole(cidr, r, c.prefix === (c.family === 'ipv4' ? 32 : 128) ? c.network : c.text);
    }
    this.give('clients', clients);
    this.give('cidr', cidr);
    for (const pod of this.pods.values()) this.recomputePod(pod);
    for (const svc of this.services.values()) this.recomputeService(svc);
  }

  private recomputeNamespace(name: string): void {
    for (const pod of this.inNamespace(this.podsIn, this.pods, name)) this.recomputePod(pod);
    for (const svc of this.inNamespace(this.servicesIn, this.services, name)) this.recomputeService(svc);
  }

  private recomputePod(pod: PodObject): void {
    const out = new Map<string, string[]>();
    const ips = pod.ips.filter(isIpAddress);
    if (ips.length > 0) {
      const ns = this.namespaces.get(pod.namespace);
      const backing = this.inNamespace(this.servicesIn, this.services, pod.namespace).filter(
        (s) =>
          s.namespace === pod.namespace &&
          s.selector !== null &&
          Object.keys(s.selector).length > 0 &&
          matchesSelector({ matchLabels: s.selector }, pod.labels),
      );
      for (const r of this.candidates(pod.namespace)) {
        if (!r.rule.destinations.some((d) => podMatches(d, pod, ns, backing))) continue;
        for (const ip of ips) if (!coveredByCidr(r.shape, ip)) addWhole(out, r, ip);
      }
    }
    this.give(`pod:${pod.uid}`, out);
  }

  private recomputeService(svc: ServiceObject): void {
    const out = new Map<string, string[]>();
    const ns = this.namespaces.get(svc.namespace);
    for (const r of this.candidates(svc.namespace)) {
      if (!r.rule.destinations.some((d) => serviceMatches(d, svc, ns))) continue;
      for (const ip of svc.clusterIPs.filter(isIpAddress)) {
        if (coveredByCidr(r.shape, ip)) continue;
        push(out, `${r.id}_p`, ...servicePorts(r.shape, ip, svc.ports).map(portKey));
      }
    }
    this.give(`svc:${svcKey(svc.namespace, svc.name)}`, out);
  }

  /** Replaces what `contributor` gives with `next`, adjusting counts and recording crossings of zero. */
  private give(contributor: string, next: Map<string, string[]>): void {
    const before = this.given.get(contributor) ?? new Map<string, string[]>();
    for (const [set, keys] of before) {
      const counts = this.sets.get(set);
      if (!counts) continue; // the rule was dropped with its sets
      for (const k of keys) {
        const n = (counts.get(k) ?? 0) - 1;
        if (n > 0) counts.set(k, n);
        else {
          counts.delete(k);
          this.note(set, k, false);
        }
      }
    }
    for (const [set, keys] of next) {
      let counts = this.sets.get(set);
      if (!counts) this.sets.set(set, (counts = new Map()));
      for (const k of keys) {
        const n = (counts.get(k) ?? 0) + 1;
        counts.set(k, n);
        if (n === 1) this.note(set, k, true);
      }
    }
    if (next.size === 0) this.given.delete(contributor);
    else this.given.set(contributor, next);
  }

  private note(set: string, key: string, added: boolean): void {
    let p = this.pending.get(set);
    if (!p) this.pending.set(set, (p = { kind: set.slice(-1) as SetKind, add: new Set(), del: new Set() }));
    // An element removed and given back in one step (or the reverse) is no change at all.
    if (added) {
      if (!p.del.delete(key)) p.add.add(key);
    } else if (!p.add.delete(key)) p.del.add(key);
  }

  private takeDelta(): CompileDelta {
    const changes: SetChange[] = [];
    for (const [set, p] of this.pending) {
      if (p.add.size + p.del.size > 0)
        changes.push({ set, kind: p.kind, add: [...p.add].sort(), del: [...p.del].sort() });
    }
    this.pending = new Map();
    return { addedRules: [], removedRules: [], changes };
  }
}

function objectKey(e: ClusterEvent & { type: 'upsert' }): string {
  if (e.kind === 'namespace') return `ns:${e.object.name}`;
  if (e.kind === 'pod') return `pod:${e.object.uid}`;
  return `svc:${svcKey(e.object.namespace, e.object.name)}`;
}

function index(m: Map<string, Set<string>>, ns: string, id: string, add: boolean): void {
  let s = m.get(ns);
  if (add) {
    if (!s) m.set(ns, (s = new Set()));
    s.add(id);
  } else if (s) {
    s.delete(id);
    if (s.size === 0) m.delete(ns);
  }
}

function push(out: Map<string, string[]>, set: string, ...keys: string[]): void {
  if (keys.length === 0) return;
  const list = out.get(set);
  if (list) {
    for (const k of keys) if (!list.includes(k)) list.push(k);
  } else out.set(set, [...new Set(keys)]);
}

function addWhole(out: Map<string, string[]>, r: CompiledRule, addr: string): void {
  const { p, a } = wholeAddress(r.shape, addr);
  push(out, `${r.id}_p`, ...p.map(portKey));
  push(out, `${r.id}_a`, ...a);
}

function namespaceMatches(d: Destination & { kind: 'namespace' }, ns: NamespaceObject | undefined): boolean {
  if (!ns) return false; // a namespace not (or no longer) seen: nothing in it is reachable
  if (d.names?.includes(ns.name)) return true;
  return d.selector !== undefined && matchesSelector(d.selector, ns.labels);
}

function selectsService(d: Destination & { kind: 'service' }, svc: ServiceObject): boolean {
  if (svc.namespace !== d.namespace) return false;
  if (d.name !== undefined) return svc.name === d.name;
  return d.selector !== undefined && matchesSelector(d.selector, svc.labels);
}

function podMatches(
  d: Destination,
  pod: PodObject,
  ns: NamespaceObject | undefined,
  backing: ServiceObject[],
): boolean {
  switch (d.kind) {
    case 'namespace':
      return namespaceMatches(d, ns);
    case 'pod':
      return d.namespace === pod.namespace && ns !== undefined && matchesSelector(d.selector, pod.labels);
    case 'service':
      return ns !== undefined && backing.some((s) => selectsService(d, s));
    case 'cidr':
      return false; // CIDR elements come from the rule itself
  }
}

function serviceMatches(d: Destination, svc: ServiceObject, ns: NamespaceObject | undefined): boolean {
  if (d.kind === 'namespace') return namespaceMatches(d, ns);
  if (d.kind === 'service') return ns !== undefined && selectsService(d, svc);
  return false;
}

/**
 * Several deltas as one (events batched into one nftables transaction). The compiler reports only
 * crossings of zero, so for one element additions and deletions alternate: an opposite pending change
 * cancels out. Rule additions/removals concatenate (a rule added then removed in one batch cancels).
 */
export function mergeDeltas(deltas: readonly CompileDelta[]): CompileDelta {
  const added = new Set<string>();
  const removed = new Set<string>();
  const sets = new Map<string, { kind: SetKind; ops: Map<string, boolean> }>();
  for (const d of deltas) {
    for (const id of d.removedRules) {
      if (!added.delete(id)) removed.add(id);
      for (const k of ['c', 'p', 'a']) sets.delete(`${id}_${k}`);
    }
    for (const id of d.addedRules) {
      if (removed.delete(id)) {
        // dropped and re-created: treat as a fresh rule whose elements follow
        removed.add(id);
      }
      added.add(id);
    }
    for (const c of d.changes) {
      let s = sets.get(c.set);
      if (!s) sets.set(c.set, (s = { kind: c.kind, ops: new Map() }));
      for (const k of c.del)
        if (s.ops.get(k) === true) s.ops.delete(k);
        else s.ops.set(k, false);
      for (const k of c.add)
        if (s.ops.get(k) === false) s.ops.delete(k);
        else s.ops.set(k, true);
    }
  }
  const changes: SetChange[] = [];
  for (const [set, s] of sets) {
    const add = [...s.ops].filter(([, v]) => v).map(([k]) => k);
    const del = [...s.ops].filter(([, v]) => !v).map(([k]) => k);
    if (add.length + del.length > 0) changes.push({ set, kind: s.kind, add, del });
  }
  return { addedRules: [...added], removedRules: [...removed].filter((id) => !added.has(id)), changes };
}
