import type { OidcConfig } from '../config/schema.js';
import { decideAccess, notAllowedMessage, readProfile, uniqueName } from '../auth/oidc-claims.js';
import { AppError, Forbidden } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import type { OidcIdentity, Store, User } from '../store/types.js';
import type { TokenCipher } from './oidc-token-cipher.js';
import type { UserService } from './users.js';

const log = logger.child({ module: 'oidc-accounts' });

export interface OidcAccountsDeps {
  store: Store;
  users: UserService;
  settings: OidcConfig;
  /** Seals refresh tokens; absent: refresh tokens are not kept (no leaver check for those users). */
  cipher?: TokenCipher;
  now: () => Date;
}

/** What applying the provider's view of a user changed. */
export interface AccessOutcome {
  user: User;
  disabled: boolean;
  roleChanged?: 'admin' | 'user';
}

/**
 * Provider accounts ↔ podgate users. The link is the provider's subject, never the name: a first
 * sign-in always creates a new user (a name already taken, e.g. by a local account, gets a suffix,
 * so nobody takes over an existing account by choosing their user name at the provider). Groups are
 * applied on every sign-in and every sync: losing the admin groups demotes, losing the allowed groups
 * disables (which revokes the user's certificates, as any disable does).
 */
export class OidcAccounts {
  constructor(private readonly deps: OidcAccountsDeps) {}

  get issuer(): string {
    return this.deps.settings.issuer;
  }

  /** The user for these verified ID-token claims; throws a Forbidden that says what to do when refused. */
  async signIn(claims: Record<string, unknown>, refreshToken?: string): Promise<User> {
    const { store, settings, now } = this.deps;
    const profile = readProfile(claims, settings);
    const sealed = refreshToken && this.deps.cipher ? this.deps.cipher.seal(refreshToken) : null;
    const identity = await store.getOidcIdentity(this.issuer, profile.subject);
    const access = decideAccess(profile.groups, settings);
    if (!identity) {
      if (!access.allowed) {
        this.audit('oidc.denied', profile.name, 'error', {
          subject: profile.subject,
          groups: profile.groups,
        });
        throw new Forbidden(notAllowedMessage(settings));
      }
      return this.createLinked(profile, access.admin === true, sealed);
    }
    const user = await store.getUserById(identity.userId);
    if (!user) throw new AppError(500, 'oidc_orphan', 'linked user is missing');
    if (JSON.stringify([...identity.groups].sort()) !== JSON.stringify([...profile.groups].sort())) {
      // access rules match these groups: a change here changes what the user's devices reach
      this.audit('oidc.groups', user.name, 'ok', { from: identity.groups, to: profile.groups });
    }
    await store.updateOidcIdentity(this.issuer, profile.subject, {
      groups: profile.groups,
      lastLoginAt: now(),
      ...(sealed ? { refreshToken: sealed } : {}),
    });
    if (user.disabled) {
      this.audit('oidc.denied', user.name, 'error', { reason: 'disabled', groups: profile.groups });
      throw new Forbidden(
        `your podgate account "${user.name}" is disabled: ask your admin to enable it (podgate user enable ${user.name})`,
      );
    }
    const outcome = await this.apply(user, profile.groups, 'oidc');
    if (outcome.disabled) throw new Forbidden(notAllowedMessage(settings));
    return outcome.user;
  }

  /** Creates the user and the link in one transaction (a second, concurrent first sign-in finds the link). */
  private async createLinked(
    profile: { subject: string; name: string; groups: string[] },
    admin: boolean,
    sealed: string | null,
  ): Promise<User> {
    const { store, now } = this.deps;
    const user = await store.transaction(async (tx) => {
      const linked = await tx.getOidcIdentity(this.issuer, profile.subject);
      const existing = linked && (await tx.getUserById(linked.userId));
      if (existing) return existing;
      const name = await uniqueName(profile.name, async (n) => (await tx.getUserByName(n)) !== undefined);
      const role = admin ? 'admin' : 'user';
      const created = await tx.createUser({ name, role, passwordHash: null });
      await tx.appendAudit({
        actor: 'oidc',
        action: 'user.create',
        target: name,
        result: 'ok',
        details: { role },
      });
      await tx.insertOidcIdentity({
        issuer: this.issuer,
        subject: profile.subject,
        userId: created.id,
        groups: profile.groups,
        refreshToken: sealed,
        createdAt: now(),
        lastLoginAt: now(),
      });
      await tx.appendAudit({ actor: 'oidc', action: 'oidc.link', target: name, result: 'ok', details: {
        subject: profile.subject,
        issuer: this.issuer,
        groups: profile.groups,
        ...(name !== profile.name ? { requestedName: profile.name } : {}),
      } });
      return created;
    });
    log.info({ user: user.name, subject: profile.subject }, 'user created by single sign-on');
    return user;
  }

  /**
   * Applies group membership to a user: disable when outside the allowed groups (revoking devices),
   * otherwise set the role from the admin groups (when configured). `actor` names the trigger.
   */
  async apply(user: User, groups: readonly string[], actor: string): Promise<AccessOutcome> {
    const { settings, users } = this.deps;
    const access = decideAccess(groups, settings);
    if (!access.allowed) {
      if (user.disabled) return { user, disabled: true };
      const { user: updated, revoked } = await users.disable({ actor, name: user.name });
      this.audit('oidc.disable', user.name, 'ok', {
        reason: 'not in an allowed group',
        groups: [...groups],
        revoked: revoked.length,
      });
      return { user: updated, disabled: true };
    }
    const role = access.admin === undefined ? user.role : access.admin ? 'admin' : 'user';
    if (role !== user.role) {
      const updated = await users.setRole({ actor, name: user.name, role });
      this.audit(role === 'admin' ? 'oidc.promote' : 'oidc.demote', user.name, 'ok', { groups: [...groups] });
      return { user: updated, disabled: false, roleChanged: role };
    }
    return { user, disabled: false };
  }

  async identities(): Promise<OidcIdentity[]> {
    return await this.deps.store.listOidcIdentities(this.issuer);
  }

  private async audit(
    action: string,
    target: string,
    result: 'ok' | 'error',
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.deps.store.appendAudit({ actor: 'oidc', action, target, result, details });
  }
}
