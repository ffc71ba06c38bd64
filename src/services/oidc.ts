import { join } from 'node:path';
import { OidcClient } from '../auth/oidc-client.js';
import type { CustomFetch } from 'openid-client';
import type { AppContext } from './context.js';
import { OidcAccounts } from './oidc-accounts.js';
import { syncOidcUsers, type SyncEntry } from './oidc-sync.js';
import { TokenCipher } from './oidc-token-cipher.js';

/** The lock file (in the data dir) that keeps `serve`'s leaver check and `podgate user sync` apart. */
export const SYNC_LOCK_FILE = '.oidc-sync.lock';

/** Single sign-on, wired: the provider client, the account rules and the leaver check. */
export interface OidcParts {
  client: OidcClient;
  accounts: OidcAccounts;
  sync(actor?: string): Promise<SyncEntry[]>;
}

/** The parts for `auth.oidc`, or undefined when single sign-on is not configured. */
export function openOidc(ctx: AppContext, options: { fetch?: CustomFetch } = {}): OidcParts | undefined {
  const settings = ctx.config.auth.oidc;
  if (!settings) return undefined;
  const cipher = TokenCipher.open(ctx.config, ctx.dataDir);
  const client = new OidcClient(settings, ctx.now, options.fetch);
  const accounts = new OidcAccounts({ store: ctx.store, users: ctx.users, settings, cipher, now: ctx.now });
  return {
    client,
    accounts,
    sync: (actor) =>
      syncOidcUsers(
        {
          store: ctx.store,
          users: ctx.users,
          client,
          accounts,
          cipher,
          now: ctx.now,
          lockFile: join(ctx.dataDir, SYNC_LOCK_FILE),
        },
        actor,
      ),
  };
}
