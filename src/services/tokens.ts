import { createHash, randomBytes } from 'node:crypto';
import { BadRequest, NotFound, Unauthorized } from '../lib/errors.js';
import { validateName } from '../lib/names.js';
import type { ApiToken, Store, User } from '../store/types.js';

/** sha256 hex of an API token: the store keeps only this. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new API token: 32 random bytes, with a prefix that secret scanners and people recognise. */
export function newApiToken(): string {
  return `pgt_${randomBytes(32).toString('base64url')}`;
}

export const MAX_TOKEN_DAYS = 3650;

export interface TokenServiceDeps {
  store: Store;
  /** Lifetime of a new token when the caller names none (config `web.apiTokenDays`). */
  defaultDays: number;
  now: () => Date;
}

/**
 * API tokens: made with a name and an expiry, shown once, listed with their last use, deleted by their
 * owner (or an admin). A token of a disabled user is deleted by the store with the disable, so enabling
 * the account again does not bring it back.
 */
export class TokenService {
  constructor(private readonly deps: TokenServiceDeps) {}

  /** Makes a token for `owner`; the secret is in the answer only. */
  async create(o: { actor: string; owner: User; name: string; days?: number }): Promise<{
      token: ApiToken;
      secret: string;
  }> {
    const name = validateName('name', o.name);
    const days = o.days ?? this.deps.defaultDays;
    if (!Number.isInteger(days) || days < 1 || days > MAX_TOKEN_DAYS)
      throw new BadRequest(`days must be a whole number from 1 to ${MAX_TOKEN_DAYS}`, 'days');
    if (o.owner.disabled) throw new BadRequest(`user '${o.owner.name}' is disabled`, 'user');
    const secret = newApiToken();
    const expiresAt = new Date(this.deps.now().getTime() + days * 86_400_000);
    const { store } = this.deps;
    const token = await store.transaction(async (tx) => {
      const t = await tx.createToken({ userId: o.owner.id, name, tokenHash: hashToken(secret), expiresAt });
      await tx.appendAudit({
        actor: o.actor,
        action: 'token.create',
        target: o.owner.name,
        result: 'ok',
        details: { tokenId: t.id, name, expiresAt: expiresAt.toISOString() },
      });
      return t;
    });
    return { token, secret };
  }

  /** A user's own tokens; for an admin with `all`, everyone's. */
  list(actor: User, all = false): Promise<ApiToken[]> {
    const { store } = this.deps;
    return all && actor.role === 'admin' ? store.listAllTokens() : store.listTokens(actor.id);
  }

  /** Deletes a token of the actor's own (admins: anyone's); someone else's id looks like an unknown one. */
  async delete(actor: User, id: number): Promise<ApiToken> {
    const { store } = this.deps;
    const token = Number.isInteger(id) && id > 0 ? await store.getToken(id) : undefined;
    if (!token || (token.userId !== actor.id && actor.role !== 'admin'))
      throw new NotFound('token not found');
    await store.transaction(async (tx) => {
      await tx.deleteToken(token.id);
      await tx.appendAudit({
        actor: actor.name,
        action: 'token.delete',
        target: token.userName,
        result: 'ok',
        details: { tokenId: token.id, name: token.name },
      });
    });
    return token;
  }

  /** The token's owner when the secret is valid, unexpired and the owner enabled; 401 otherwise. */
  async authenticate(secret: string): Promise<{ token: ApiToken; user: User; }> {
    const { store } = this.deps;
    const token = await store.findTokenByHash(hashToken(secret));
    const user = token ? await store.getUserById(token.userId) : undefined;
    const at = this.deps.now();
    if (!token || !user || user.disabled) throw new Unauthorized('invalid token');
    if (token.expiresAt && token.expiresAt.getTime() <= at.getTime()) throw new Unauthorized('token expired');
    // "last used" to the minute is enough, and spares a database write on every API call.
    if (!token.lastUsedAt || at.getTime() - token.lastUsedAt.getTime() >= 60_000)
      await store.touchToken(token.id, at);
    return { token, user };
  }
}
