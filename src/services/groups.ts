import { BadRequest, NotFound } from '../lib/errors.js';
import { validateName } from '../lib/names.js';
import type { LocalGroup, Store, User } from '../store/types.js';

/** Every user whose role is admin is in this group, whatever the local and single sign-on groups say. */
export const ADMINS_GROUP = 'admins';

export interface GroupServiceDeps {
  store: Store;
  /** Called after every committed change (publishes the access bundle). */
  changed: () => Promise<void>;
}

/** The groups a user is in, by where the membership comes from. */
export interface Memberships {
  local: string[];
  /** As the provider last reported them (sign-in or the leaver check's sync). */
  sso: string[];
  /** `admins` when the user's role is admin. */
  builtin: string[];
}

/**
 * Local groups (kept by podgate) and the view of a user's memberships that access rules match a
 * `group` subject against: local groups, single sign-on groups, and the built-in `admins`.
 * Every change is audited in the transaction that makes it.
 */
export class GroupService {
  constructor(private readonly deps: GroupServiceDeps) {}

  async list(): Promise<LocalGroup[]> {
    return await this.deps.store.listGroups();
  }

  async get(name: string): Promise<LocalGroup> {
    const g = await this.deps.store.getGroup(name);
    if (!g) throw new NotFound(`group '${name}' does not exist`);
    return g;
  }

  async create(o: { actor: string; name: string; description?: string }): Promise<LocalGroup> {
    const name = validateName('name', o.name);
    if (o.description !== undefined && (typeof o.description !== 'string' || o.description.length > 1024))
      throw new BadRequest('description must be text of at most 1024 characters', 'description');
    const { store } = this.deps;
    const group = store.transaction(async (tx) => {
      const g = tx.createGroup({ name, description: o.description ?? '' });
      await tx.appendAudit({ actor: o.actor, action: 'group.create', target: name, result: 'ok', details: {} });
      return g;
    });
    await this.deps.changed();
    return group;
  }

  async remove(o: { actor: string; name: string }): Promise<void> {
    const { store } = this.deps;
    await store.transaction(async (tx) => {
      const g = await this.get(o.name);
      await tx.deleteGroup(g.name);
      await tx.appendAudit({
        actor: o.actor,
        action: 'group.delete',
        target: g.name,
        result: 'ok',
        details: { members: g.members },
      });
    });
    await this.deps.changed();
  }

  private async user(name: string): Promise<User> {
    const user = await this.deps.store.getUserByName(validateName('user', name));
    if (!user) throw new NotFound(`user '${name}' does not exist`);
    return user;
  }

  addMember(o: { actor: string; group: string; user: string }): Promise<LocalGroup> {
    return this.changeMember(o, 'add');
  }

  removeMember(o: { actor: string; group: string; user: string }): Promise<LocalGroup> {
    return this.changeMember(o, 'remove');
  }

  /** One membership change, audited in its transaction, then published (rules match on groups). */
  private async changeMember(
    o: { actor: string; group: string; user: string },
    op: 'add' | 'remove',
  ): Promise<LocalGroup> {
    const { store } = this.deps;
    const group = store.transaction(async (tx) => {
      const user = await this.user(o.user);
      if (op === 'add') await tx.addGroupMember(o.group, user.id);
      else await tx.removeGroupMember(o.group, user.id);
      await tx.appendAudit({
        actor: o.actor,
        action: `group.member.${op}`,
        target: o.group,
        result: 'ok',
        details: { user: user.name },
      });
      return this.get(o.group);
    });
    await this.deps.changed();
    return group;
  }

  /** Where each of a user's groups comes from. */
  async membershipsOf(user: User): Promise<Memberships> {
    const { store } = this.deps;
    return {
      local: await store.localGroupsOf(user.id),
      sso: [...((await store.getOidcIdentityOfUser(user.id))?.groups ?? [])].sort(),
      builtin: user.role === 'admin' ? [ADMINS_GROUP] : [],
    };
  }

  /**
   * A lookup of every user's groups read with three queries (local groups with their members, single
   * sign-on identities, users), for resolving many users at once.
   */
  async bulkGroupsOf(): Promise<(user: User) => Promise<Set<string>>> {
    const { store } = this.deps;
    const local = new Map<string, string[]>();
    for (const g of await store.listGroups())
      for (const m of g.members) local.set(m, [...(local.get(m) ?? []), g.name]);
    return async (user) => {
      const sso = (await store.getOidcIdentityOfUser(user.id))?.groups ?? [];
      return new Set([
        ...(local.get(user.name) ?? []),
        ...sso,
        ...(user.role === 'admin' ? [ADMINS_GROUP] : []),
      ]);
    };
  }

  /** Every group name a `group` subject may match for this user. */
  async groupsOf(user: User): Promise<Set<string>> {
    const m = await this.membershipsOf(user);
    return new Set([...m.local, ...m.sso, ...m.builtin]);
  }
}
