import { GrantRevoked, type OidcClient } from '../auth/oidc-client.js';
import { readGroups } from '../auth/oidc-claims.js';
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { withAsyncFileLock } from '../store/file-lock.js';
import type { Store } from '../store/types.js';
import type { OidcAccounts } from './oidc-accounts.js';
import type { TokenCipher } from './oidc-token-cipher.js';
import type { UserService } from './users.js';

const log = logger.child({ module: 'oidc-sync' });

/** One user's result in a sync run. */
export interface SyncEntry {
  user: string;
  outcome: 'ok' | 'disabled' | 'demoted' | 'promoted' | 'no-refresh-token' | 'already-disabled' | 'error';
  detail?: string;
}

export interface SyncDeps {
  store: Store;
  users: UserService;
  client: OidcClient;
  accounts: OidcAccounts;
  cipher: TokenCipher;
  now: () => Date;
  /**
   * The lock file that serialises runs across processes (`serve`'s timer and `podgate user sync`):
   * two runs reading the same stored refresh token would spend a single-use token twice, and the
   * provider then refuses the second (and, with reuse detection, the whole grant).
   */
  lockFile: string;
  /** How long a run waits for another one to finish (default 10 minutes). */
  lockWaitMs?: number;
}

/** Another leaver check held the lock for longer than a run waits. */
export class SyncBusy extends AppError {
  constructor(waitedMs: number) {
    super(
      409,
      'oidc_sync_busy',
      `another single sign-on sync (serve's timer or podgate user sync) has been running for over ` +
        `${Math.round(waitedMs / 1000)} s; try again when it has finished`,
    );
  }
}

/**
 * The leaver check: for every single-sign-on user with a stored refresh token, ask the provider for
 * fresh tokens. `invalid_grant` (account deleted or disabled at the provider, consent withdrawn)
 * disables the user, which revokes their certificates; new groups (from the ID token, else from
 * UserInfo) are applied like a sign-in, and a missing groups claim is "in no group". A provider that
 * is down changes nothing (an error row, and the next run tries again). One run at a time across
 * processes (`deps.lockFile`).
 */
export async function syncOidcUsers(deps: SyncDeps, actor = 'oidc-sync'): Promise<SyncEntry[]> {
  const waitMs = deps.lockWaitMs ?? 10 * 60_000;
  return withAsyncFileLock(deps.lockFile, () => syncLocked(deps, actor), {
    waitMs,
    onWait: () => log.info('another single sign-on sync is running; waiting for it'),
    onTimeout: () => new SyncBusy(waitMs),
  });
}

async function syncLocked(deps: SyncDeps, actor: string): Promise<SyncEntry[]> {
  const { store, client, accounts, cipher, users } = deps;
  const out: SyncEntry[] = [];
  for (const identity of await accounts.identities()) {
    const user = await store.getUserById(identity.userId);
    if (!user) continue;
    if (user.disabled) {
      out.push({ user: user.name, outcome: 'already-disabled' });
      continue;
    }
    if (!identity.refreshToken) {
      out.push({ user: user.name, outcome: 'no-refresh-token' });
      continue;
    }
    try {
      const result = await client.refresh(cipher.open(identity.refreshToken));
      // Saved before anything else can fail: a single-use refresh token is spent by now.
      await store.updateOidcIdentity(identity.issuer, identity.subject, {
        lastSyncAt: deps.now(),
        refreshToken: cipher.seal(result.refreshToken),
      });
      if (result.claims && result.claims.sub !== identity.subject)
        throw new AppError(
          502,
          'oidc_subject_changed',
          `the provider's refreshed ID token names another subject (${String(result.claims.sub)}); nothing changed`,
        );
      const claims = await client.complete(result.claims, result.accessToken, identity.subject);
      if (!claims) {
        out.push({
          user: user.name,
          outcome: 'ok',
          detail: 'no ID token on refresh and no UserInfo endpoint: groups not re-checked',
        });
        continue;
      }
      const groups = readGroups(claims, client.settings, { missing: 'no-groups' });
      if (JSON.stringify([...groups].sort()) !== JSON.stringify([...identity.groups].sort())) {
        // access rules match these groups: a change here changes what the user reaches
        await store.appendAudit({
          actor,
          action: 'oidc.groups',
          target: user.name,
          result: 'ok',
          details: { from: identity.groups, to: groups },
        });
      }
      await store.updateOidcIdentity(identity.issuer, identity.subject, { groups });
      const applied = await accounts.apply(user, groups, actor);
      out.push({
        user: user.name,
        outcome: applied.disabled
          ? 'disabled'
          : applied.roleChanged === 'user'
            ? 'demoted'
            : applied.roleChanged === 'admin'
              ? 'promoted'
              : 'ok',
      });
    } catch (err) {
      if (err instanceof GrantRevoked) {
        const { revoked } = await users.disable({ actor, name: user.name });
        await store.transaction(async (tx) => {
          await tx.updateOidcIdentity(identity.issuer, identity.subject, {
            refreshToken: null,
            lastSyncAt: deps.now(),
          });
          await tx.appendAudit({
            actor,
            action: 'oidc.disable',
            target: user.name,
            result: 'ok',
            details: {
              reason: 'the provider refused the refresh token (invalid_grant)',
              revoked: revoked.length,
            },
          });
        });
        out.push({ user: user.name, outcome: 'disabled', detail: err.message });
        continue;
      }
      const detail = (err as Error).message;
      log.warn({ user: user.name, err: detail }, 'leaver check failed for a user; nothing changed');
      await store.appendAudit({
        actor,
        action: 'oidc.sync',
        target: user.name,
        result: 'error',
        details: { error: detail },
      });
      out.push({ user: user.name, outcome: 'error', detail });
    }
  }
  return out;
}

/**
 * Runs the leaver check in `serve`: first a minute after start, then every `hours`. Runs never overlap.
 * Returns the function that stops it.
 */
export function scheduleOidcSync(run: () => Promise<SyncEntry[]>, hours: number): () => void {
  if (hours <= 0) return () => undefined;
  let running = false;
  const tick = (): void => {
    if (running) return;
    running = true;
    run()
      .then((entries) => {
        const changed = entries.filter((e) => e.outcome !== 'ok' && e.outcome !== 'already-disabled');
        log.info({ checked: entries.length, changed }, 'single sign-on leaver check done');
      })
      .catch((err: unknown) =>
        log.error({ err: (err as Error).message }, 'single sign-on leaver check failed'),
      )
      .finally(() => {
        running = false;
      });
  };
  const first = setTimeout(tick, 60_000);
  const every = setInterval(tick, hours * 3_600_000);
  first.unref();
  every.unref();
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}
