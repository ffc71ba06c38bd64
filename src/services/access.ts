import { createHash } from 'node:crypto';
import { yamlLib } from '../lib/yaml.js';
import type { AccessBundle, AccessMode, AccessRule } from '../access/types.js';
import { BadRequest } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import type { AccessPublisher } from '../openvpn/access-publisher.js';
import { LOCK } from '../store/locks.js';
import type { Store, TxStore } from '../store/types.js';
import type { AddressService } from './addresses.js';
import { connectableDevices, resolveBundle, validCerts } from './access-subjects.js';
import { ADMINS_GROUP, type GroupService } from './groups.js';

const log = logger.child({ module: 'access' });
export const MODE_SETTING = 'access.mode';
/** The rule `podgate init` writes on a new install. */
export const ADMINS_RULE: AccessRule = {
  name: 'admins-everything',
  description: 'written by podgate init: administrators reach everything',
  subjects: [{ kind: 'group', name: ADMINS_GROUP }],
  destinations: [{ kind: 'cidr', cidr: '0.0.0.0/0' }],
};

/** What `apply` changes (or would, on a dry run). */
export interface RulesDiff {
  create: string[];
  update: string[];
  delete: string[];
  unchanged: string[];
}

export interface AccessServiceDeps {
  store: Store;
  /** access.mode from the config, which overrides the stored one when set. */
  configMode?: AccessMode;
  groups: GroupService;
  addresses: AddressService;
  publishers: AccessPublisher[];
  now: () => Date;
}

const same = (a: AccessRule, b: AccessRule) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The access rules (one source of truth in the store, audited), the mode, and the bundle published to
 * every enforcement point after each change: devices that may connect with their stable addresses, and
 * the rules with subjects resolved to those addresses.
 */
export class AccessService {
  private lastPublished = 0;
  private failedVersion = 0;
  private chain: Promise<void> | undefined;
  private dirty = false;
  private forceNext = false;

  constructor(private readonly deps: AccessServiceDeps) {}

  /**
   * The mode in force and where it comes from. `from` (here and below): the transaction handle when
   * called inside one, where the store itself is refused.
   */
  async mode(
    from: TxStore = this.deps.store,
  ): Promise<{ mode: AccessMode; source: 'config' | 'data dir' | 'default' }> {
    if (this.deps.configMode) return { mode: this.deps.configMode, source: 'config' };
    const stored = await from.getSetting(MODE_SETTING);
    if (stored === 'open' || stored === 'enforce') return { mode: stored, source: 'data dir' };
    return { mode: 'enforce', source: 'default' };
  }

  async rules(from: TxStore = this.deps.store): Promise<AccessRule[]> {
    return (await from.listRules()).map((r) => r.rule);
  }

  /** What applying `rules` would change. */
  async diff(rules: readonly AccessRule[], from: TxStore = this.deps.store): Promise<RulesDiff> {
    const current = new Map((await this.rules(from)).map((r, i) => [r.name, { r, i }]));
    const out: RulesDiff = { create: [], update: [], delete: [], unchanged: [] };
    rules.forEach((r, i) => {
      const old = current.get(r.name);
      if (!old) out.create.push(r.name);
      else if (!same(old.r, r) || old.i !== i) out.update.push(r.name);
      else out.unchanged.push(r.name);
    });
    const wanted = new Set(rules.map((r) => r.name));
    for (const name of current.keys()) if (!wanted.has(name)) out.delete.push(name);
    return out;
  }

  /**
   * Makes the stored rules equal to `input` (a rules document: `{ rules: [...] }`): creates, updates and
   * deletes in one transaction with an audit row each, or nothing at all when any rule is invalid.
   */
  async apply(o: { actor: string; input: unknown; dryRun?: boolean }): Promise<RulesDiff> {
    // the rule schemas (zod) are built when rules are applied, not when any command opens its context
    const { parseRulesDocument } = await import('../access/rule-schema.js');
    const rules = parseRulesDocument(o.input);
    const { store } = this.deps;
    if (o.dryRun) return await this.diff(rules);
    const diff = await store.transaction(async (tx) => {
      const d = await this.diff(rules, tx);
      for (const name of d.delete) {
        await tx.deleteRule(name);
        await tx.appendAudit({
          actor: o.actor,
          action: 'access.rule.delete',
          target: name,
          result: 'ok',
          details: {},
        });
      }
      for (const [i, r] of rules.entries()) {
        if (!(await tx.putRule(r, i))) continue;
        const action = d.create.includes(r.name) ? 'access.rule.create' : 'access.rule.update';
        await tx.appendAudit({ actor: o.actor, action, target: r.name, result: 'ok', details: { rule: r } });
      }
      return d;
    });
    await this.changed();
    return diff;
  }

  /** Parses rules.yaml text; a YAML syntax error is a 400 naming the line. */
  parseYaml(text: string): unknown {
    try {
      return yamlLib().parse(text, { prettyErrors: true, maxAliasCount: 100 }) ?? {};
    } catch (err) {
      throw new BadRequest(`rules.yaml: ${(err as Error).message.split('\n')[0]}`, 'rules.yaml');
    }
  }

  /** The rules as YAML that `apply` accepts. */
  async exportYaml(): Promise<string> {
    return yamlLib().stringify({ rules: await this.rules() }, { lineWidth: 0 });
  }

  async setMode(o: { actor: string; mode: unknown }): Promise<AccessMode> {
    if (o.mode !== 'open' && o.mode !== 'enforce')
      throw new BadRequest('mode must be "open" or "enforce"', 'mode');
    const { store } = this.deps;
    await store.transaction(async (tx) => {
      await tx.setSetting(MODE_SETTING, o.mode as AccessMode);
      await tx.appendAudit({
        actor: o.actor,
        action: 'access.mode',
        target: String(o.mode),
        result: 'ok',
        details: {},
      });
    });
    await this.changed();
    return o.mode;
  }

  /**
   * A new install: records `enforce` unless a mode is recorded, and writes the admins rule when there
   * is no rule at all. Returns what it wrote (init prints it).
   */
  async ensureNewInstallDefaults(
    actor: string,
    store: TxStore = this.deps.store,
  ): Promise<{ mode?: AccessMode; rule?: AccessRule }> {
    return await store.transaction(async (tx) => {
      const out: { mode?: AccessMode; rule?: AccessRule } = {};
      await tx.lock(LOCK.setting(MODE_SETTING));
      if ((await tx.getSetting(MODE_SETTING)) === undefined) {
        await tx.setSetting(MODE_SETTING, 'enforce');
        out.mode = 'enforce';
      }
      if ((await tx.listRules()).length === 0) {
        await tx.putRule(ADMINS_RULE, 0);
        await tx.appendAudit({
          actor,
          action: 'access.rule.create',
          target: ADMINS_RULE.name,
          result: 'ok',
          details: { rule: ADMINS_RULE },
        });
        out.rule = ADMINS_RULE;
      }
      return out;
    });
  }

  /**
   * The bundle as of now, with its version. Computed in one write transaction: devices without an
   * address get one; when time alone changed the content (a certificate expired) since this version
   * was computed, the version goes up, so one version never names two contents.
   */
  async bundle(): Promise<AccessBundle> {
    const { store, now } = this.deps;
    const at = now();
    return await store.transaction(async (tx) => {
      const valid = await validCerts(tx, at);
      const held = await this.deps.addresses.backfill(valid, tx);
      const mode = (await this.mode(tx)).mode;
      const devices = await connectableDevices(tx, at, valid, held);
      const { clients, rules } = await resolveBundle(await this.rules(tx), devices, this.deps.groups, tx);
      const hash = createHash('sha256').update(JSON.stringify({ mode, clients, rules })).digest('hex');
      const state = await tx.getAccessState();
      let version = state.version;
      if (state.publishedVersion === version && state.publishedHash !== hash)
        version = await tx.bumpAccessVersion();
      if (state.publishedVersion !== version || state.publishedHash !== hash)
        await tx.markAccessPublished(version, hash);
      return { version, mode, clients, rules, generatedAt: at.toISOString() };
    });
  }

  /** The stored version (cheap: what the poll compares). */
  async version(): Promise<number> {
    return (await this.deps.store.getAccessState()).version;
  }

  addPublisher(p: AccessPublisher): void {
    if (!this.deps.publishers.some((q) => q.name === p.name)) this.deps.publishers.push(p);
  }

  /**
   * Publishes when the version moved since this process last published. The one path every
   * publication takes: calls made while one runs are coalesced into one more run after it, and the
   * promise settles once a run that started after the call has finished, so a caller that awaits it
   * answers only after its own change went out. Never rejects: a failing target is logged and audited
   * (once per version) and retried at the next call, so fire-and-forget callers (timers) may `void` it.
   */
  changed(): Promise<void> {
    return this.schedule(false);
  }

  /** Recomputes and publishes even when the version did not move (time may have changed the content). */
  refresh(): Promise<void> {
    return this.schedule(true);
  }

  private schedule(force: boolean): Promise<void> {
    if (force) this.forceNext = true;
    this.dirty = true;
    this.chain ??= this.drain();
    return this.chain;
  }

  /**
   * Runs publications while calls keep arriving. The queue is released in the same turn as the last
   * `dirty` check: a call that comes after it starts a new drain instead of joining one that has
   * already decided to stop (and would have resolved without publishing that call's change).
   */
  private async drain(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        const f = this.forceNext;
        this.forceNext = false;
        await this.publishOnce(f).catch((err: unknown) => log.error({ err }, 'access publish failed'));
      }
    } finally {
      this.chain = undefined;
    }
  }

  private async publishOnce(force: boolean): Promise<void> {
    if (this.deps.publishers.length === 0) return;
    if (!force && (await this.version()) === this.lastPublished) return;
    const bundle = await this.bundle();
    if (!force && bundle.version === this.lastPublished) return;
    const { ok, held } = await this.sendToAll(bundle);
    // This process's first publication, and a target holds a higher version (the data dir was restored
    // from a backup, or moved): that version would keep every later bundle out until the counter caught
    // up by itself. The store is the source of truth, so its counter jumps above the held one (audited)
    // and the current state goes out again. Once per process, so two managers wrongly sharing one
    // target cannot outbid each other for ever.
    if (this.lastPublished === 0 && held > bundle.version) {
      await this.raiseAbove(held, bundle.version);
      const again = await this.bundle();
      const second = await this.sendToAll(again);
      this.settle(second.ok, again.version);
      return;
    }
    this.settle(ok, bundle.version);
  }

  private settle(ok: boolean, version: number): void {
    if (ok) this.lastPublished = version;
    else this.failedVersion = version;
  }

  private async raiseAbove(held: number, from: number): Promise<void> {
    const { store } = this.deps;
    await store.transaction(async (tx) => {
      await tx.raiseAccessVersion(held + 1);
      await tx.appendAudit({
        actor: 'system',
        action: 'access.version.raise',
        target: `v${held + 1}`,
        result: 'ok',
        details: { from, heldByTarget: held },
      });
    });
    log.warn({ from, held }, 'a publish target held a newer access bundle: version raised above it');
  }

  /** Publishes to every target; a failure is logged (and audited once per version), never thrown. */
  private async sendToAll(bundle: AccessBundle): Promise<{ ok: boolean; held: number }> {
    let ok = true;
    let held = 0;
    for (const p of this.deps.publishers) {
      try {
        const r = await p.publish(bundle);
        if (r && r.heldVersion > held) held = r.heldVersion;
      } catch (err) {
        ok = false;
        log.error({ err, publisher: p.name, version: bundle.version }, 'access bundle publish failed');
        if (this.failedVersion !== bundle.version) {
          await this.deps.store.appendAudit({
            actor: 'system',
            action: 'access.publish',
            target: p.name,
            result: 'error',
            details: { version: bundle.version, error: (err as Error).message },
          });
        }
      }
    }
    return { ok, held };
  }
}
