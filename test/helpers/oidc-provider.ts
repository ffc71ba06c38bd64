import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** A person at the provider: claims as the provider reports them, editable while the test runs. */
export interface TestAccount {
  preferred_username?: string;
  email?: string;
  name?: string;
  /** Anything, so tests can send a malformed groups claim. */
  groups?: unknown;
}

export interface TestProvider {
  issuer: string;
  /** Accounts by subject; delete one to make the provider refuse its refresh tokens (invalid_grant). */
  accounts: Map<string, TestAccount>;
  close(): Promise<void>;
}

export interface ProviderOptions {
  /** Redirect URIs registered for client `podgate` (and `other-app`). */
  redirectUris: string[];
  clientSecret?: string;
  /** ID-token lifetime in seconds (default 3600). */
  idTokenTtl?: number;
  /** A path under the listening address for the issuer (two issuers on one port need it). */
  path?: string;
  /**
   * `id-token` puts the claims of the profile, email and groups scopes in the ID token too (like Dex,
   * Keycloak and Azure AD). Default `conformant`: oidc-provider's own default, OpenID Connect Core
   * 5.4 for the code flow, where those claims are served only at UserInfo (GitLab does so for groups).
   */
  claimsIn?: 'conformant' | 'id-token';
  /** Single-use refresh tokens: each refresh hands out a new one and spends the old (default false). */
  rotateRefreshTokens?: boolean;
  /** Called on each UserInfo answer (to show that podgate read it). */
  onUserInfo?: () => void;
}

// The provider announces its development defaults (in-memory adapter, dev keys, dev interactions,
// Node 20) on the console at every start; that is expected here and only hides real test output.
for (const level of ['warn', 'info'] as const) {
  const original = console[level].bind(console);
  console[level] = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && /oidc-provider (WARNING|NOTICE)/.test(args[0])) return;
    original(...args);
  };
}

/**
 * A real OpenID provider (`oidc-provider` 9 from npm, the certified implementation) on 127.0.0.1 with
 * its development login and consent pages. The login page accepts any password: it stands for the
 * company's identity provider, whose passwords podgate never sees. Claims come from `accounts`, read on
 * every token (so a group change shows on the next sign-in or refresh).
 */
export async function startTestProvider(o: ProviderOptions): Promise<TestProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const path = o.path ?? '';
  const issuer = `http://127.0.0.1:${port}${path}`;
  const accounts = new Map<string, TestAccount>();
  const secret = o.clientSecret ?? 'podgate-test-client-secret';
  const client = (id: string) => ({
    client_id: id,
    client_secret: secret,
    redirect_uris: o.redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code' as const],
    token_endpoint_auth_method: 'client_secret_basic' as const,
  });
  const provider = new Provider(issuer, {
    clients: [client('podgate'), client('other-app')],
    async findAccount(_ctx, sub) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims: (use: string) => {
          if (use === 'userinfo') o.onUserInfo?.();
          return { sub, ...account } as { sub: string };
        },
      };
    },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      email: ['email'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    // The ID-token-only provider has no UserInfo endpoint at all: podgate must not need one.
    ...(o.claimsIn === 'id-token' ? { conformIdTokenClaims: false } : {}),
    ...(o.rotateRefreshTokens ? { rotateRefreshToken: true } : {}),
    features: {
      devInteractions: { enabled: true },
      ...(o.claimsIn === 'id-token' ? { userinfo: { enabled: false } } : {}),
    },
    pkce: { required: () => true },
    ttl: { IdToken: o.idTokenTtl ?? 3600, AccessToken: 3600, AuthorizationCode: 60, RefreshToken: 86400 },
    cookies: { keys: ['podgate-test-provider-cookie-key'] },
  });
  // Its dev-mode warnings are noise in test output.
  provider.on('server_error', (_ctx: unknown, err: Error) => console.error('provider server_error', err));
  const callback = provider.callback();
  if (path) {
    server.on('request', (req, res) => {
      if (!req.url?.startsWith(path)) {
        res.statusCode = 404;
        res.end();
        return;
      }
      req.url = req.url.slice(path.length) || '/';
      void callback(req, res);
    });
  } else server.on('request', (req, res) => void callback(req, res));
  return {
    issuer,
    accounts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
