import type { AccessRule, Destination, LabelSelector } from '../access/types.js';
import { NotFound } from '../lib/errors.js';
import { validateName } from '../lib/names.js';
import type { Store, User } from '../store/types.js';
import type { AccessService } from './access.js';
import { connectableDevices, matchingUserSubject } from './access-subjects.js';
import {
  describeLimits,
  parseCheckTarget,
  rulesReaching,
  targetFacts,
  type CheckTarget,
  type ClusterObjects,
  type TargetFacts,
} from './access-check.js';
import type { GroupService } from './groups.js';

export function describeSelector(s: LabelSelector): string {
  const parts = Object.entries(s.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of s.matchExpressions ?? [])
    parts.push(
      e.values?.length ? `${e.key} ${e.operator} (${e.values.join(',')})` : `${e.operator} ${e.key}`,
    );
  return parts.length ? parts.join(', ') : 'everything';
}

export function describeDestination(d: Destination): string {
  switch (d.kind) {
    case 'namespace':
      return d.names
        ? `namespace ${d.names.join(', ')}`
        : `namespaces matching ${describeSelector(d.selector!)}`;
    case 'service':
      return d.name
        ? `service ${d.namespace}/${d.name}`
        : `services in ${d.namespace} matching ${describeSelector(d.selector!)}`;
    case 'pod':
      return `pods in ${d.namespace} matching ${describeSelector(d.selector)}`;
    case 'cidr':
      return `cidr ${d.cidr}`;
  }
}

export interface CheckAnswer {
  user: string;
  destination: string;
  decision: 'allow' | 'deny';
  /** The deciding rule (allow), if any. */
  rule?: string;
  covers?: string;
  limits?: string;
  mode: 'open' | 'enforce';
  /** 'cluster': selectors were evaluated with the cluster's labels; 'names': by names only (no cluster). */
  evaluatedWith: 'cluster' | 'names';
  notes: string[];
}

export interface Reach {
  rule: string;
  description?: string;
  destinations: string[];
  limits: string;
  /** The subject that brings the user in (e.g. `group a`). */
  via: string;
}

export interface Reacher {
  rule: string;
  covers: string;
  limits: string;
  users: string[];
  gateways: string[];
}

/** The questions people ask about the rules: may USER reach X, what can USER reach, who can reach X. */
export class AccessQueries {
  constructor(
    private readonly deps: { store: Store; access: AccessService; groups: GroupService; now: () => Date },
  ) {}

  private async user(name: string): Promise<User> {
    const u = await this.deps.store.getUserByName(validateName('user', name));
    if (!u) throw new NotFound(`user '${name}' does not exist`);
    return u;
  }

  private async rulesFor(user: User): Promise<{ rule: AccessRule; via: string; }[]> {
    const groups = await this.deps.groups.groupsOf(user);
    const out: { rule: AccessRule; via: string }[] = [];
    for (const rule of await this.deps.access.rules()) {
      const s = matchingUserSubject(rule, user, groups);
      if (s) out.push({ rule, via: s.kind === 'everyone' ? 'everyone' : `${s.kind} ${s.name}` });
    }
    return out;
  }

  /** What a user's devices reach, rule by rule. */
  async reachOf(userName: string): Promise<Reach[]> {
    return (await this.rulesFor(await this.user(userName))).map(({ rule, via }) => ({
      rule: rule.name,
      ...(rule.description ? { description: rule.description } : {}),
      destinations: rule.destinations.map(describeDestination),
      limits: describeLimits(rule),
      via,
    }));
  }

  private async facts(t: CheckTarget, objects: ClusterObjects | undefined): Promise<TargetFacts> {
    return objects ? targetFacts(t, objects) : {};
  }

  /** allow/deny for USER → DESTINATION, naming the deciding rule. */
  async check(userName: string, destination: string, objects?: ClusterObjects): Promise<CheckAnswer> {
    const user = await this.user(userName);
    const target = parseCheckTarget(destination);
    const { mode } = await this.deps.access.mode();
    const facts = await this.facts(target, objects);
    const notes: string[] = [];
    if (objects && target.kind === 'ip' && !facts.service && !facts.pod)
      notes.push(`no pod or Service in the cluster has address ${target.ip}`);
    if (user.disabled) notes.push(`user ${user.name} is disabled: their devices cannot connect`);
    const mine = (await this.rulesFor(user)).map((r) => r.rule);
    const match = rulesReaching(mine, target, facts)[0];
    if (mode === 'open')
      notes.push('access.mode is open: rules are not enforced, every device reaches everything');
    const base = {
      user: user.name,
      destination,
      mode,
      evaluatedWith: objects ? 'cluster' : 'names',
      notes,
    } as const;
    if (match && !user.disabled)
      return { ...base, decision: 'allow', rule: match.rule, covers: match.covers, limits: match.limits };
    if (!match) notes.push('no rule allows it (enforce allows only cluster DNS beyond the rules)');
    return { ...base, decision: mode === 'open' && !user.disabled ? 'allow' : 'deny' };
  }

  /** Every rule that reaches DESTINATION, with the users and gateways it covers. */
  async whoCanReach(
    destination: string,
    objects?: ClusterObjects,
  ): Promise<{ reachers: Reacher[]; evaluatedWith: 'cluster' | 'names' }> {
    const target = parseCheckTarget(destination);
    const facts = await this.facts(target, objects);
    const { store, groups } = this.deps;
    const users = (await store.listUsers()).filter((u) => !u.disabled);
    const groupsOf = new Map(users.map((u) => [u.id, groups.groupsOf(u)]));
    const gateways = (await connectableDevices(store, this.deps.now())).filter((d) => d.kind === 'gateway');
    const rules = await this.deps.access.rules();
    const reachers = rulesReaching(rules, target, facts).map((m) => {
      const rule = rules.find((r) => r.name === m.rule)!;
      return {
        ...m,
        users: users.filter(async (u) => matchingUserSubject(rule, u, await groupsOf.get(u.id)!)).map((u) => u.name),
        gateways: gateways
          .filter((g) =>
            rule.subjects.some(
              (s) =>
                s.kind === 'everyone' ||
                (s.kind === 'gateway' && (g.gatewayNames.includes(s.name) || g.commonName === s.name)),
            ),
          )
          .map((g) => g.gatewayNames[0] ?? g.commonName),
      };
    });
    return { reachers, evaluatedWith: objects ? 'cluster' : 'names' };
  }
}
