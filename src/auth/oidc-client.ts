import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import type { OidcConfig } from '../config/schema.js';
import { AppError, BadRequest, Upstream } from '../lib/errors.js';
import { logger } from '../lib/logger.js';

const log = logger.child({ module: 'oidc' });

/**
 * What a finished sign-in yields: the verified ID-token claims, completed from UserInfo when the ID
 * token lacks one podgate reads (see {@link OidcClient.complete}), and, maybe, a refresh token.
 */
export interface OidcResult {
  claims: Record<string, unknown>;
  refreshToken?: string;
}

/** What a refresh yields; the claims are the new ID token's only (undefined when none came back). */
export interface RefreshResult {
  claims: Record<string, unknown> | undefined;
  refreshToken: string;
  accessToken: string;
}

/** Claims that describe the token itself, never taken from UserInfo. */
const TOKEN_CLAIMS = new Set([
  'sub',
  'iss',
  'aud',
  'azp',
  'exp',
  'iat',
  'nbf',
  'nonce',
  'auth_time',
  'at_hash',
  'c_hash',
  'sid',
  'jti',
]);

/** The one-time values of a sign-in in progress (kept server-side until the provider sends the browser back). */
export interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** Where to go after signing in (already checked to be a local path). */
  next: string;
}

/** The provider refused a refresh token (`invalid_grant`): the account is gone or its consent withdrawn. */
export class GrantRevoked extends AppError {
  constructor(description: string) {
    super(401, 'oidc_grant_revoked', `the provider no longer accepts this user's sign-in (${description})`);
  }
}

const TIMEOUT_SECONDS = 10;
/** A discovery document (and the signing keys fetched with it) is reused this long. */
const DISCOVERY_TTL_MS = 10 * 60_000;

/**
 * podgate's side of OpenID Connect, built on openid-client: discovery, the authorization URL (code flow
 * with PKCE S256, state and nonce), the callback's code exchange with every ID-token check openid-client
 * makes (signature, iss, aud, exp/iat with the configured tolerance, nonce), and refresh. Every failure
 * becomes an AppError whose message tells a person what to do.
 */
export class OidcClient {
  private cached?: { config: oidc.Configuration; at: number; skew: number };

  constructor(
    readonly settings: OidcConfig,
    private readonly now: () => Date = () => new Date(),
    private readonly fetchImpl?: oidc.CustomFetch,
  ) {}

  get issuer(): string {
    return this.settings.issuer;
  }

  private secret(): string | undefined {
    const file = this.settings.clientSecretFile;
    if (!file) return undefined;
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new AppError(500, 'oidc_secret', `auth.oidc.clientSecretFile ${file} cannot be read`, {
        cause: err,
        field: 'auth.oidc.clientSecretFile',
      });
    }
  }

  /** Seconds podgate's clock is ahead of the machine clock (non-zero only when a test moves time). */
  private skew(): number {
    return Math.round((this.now().getTime() - Date.now()) / 1000);
  }

  private async configuration(): Promise<oidc.Configuration> {
    const skew = this.skew();
    const c = this.cached;
    if (c && c.skew === skew && Date.now() - c.at < DISCOVERY_TTL_MS) return c.config;
    const secret = this.secret();
    const metadata: Partial<oidc.ClientMetadata> = {
      // podgate's clock as the checks' reference: openid-client takes the offset from the machine clock
      [oidc.clockSkew]: skew,
      [oidc.clockTolerance]: this.settings.clockToleranceSeconds,
    };
    if (secret !== undefined) metadata.client_secret = secret;
    const auth = secret === undefined ? oidc.None() : oidc.ClientSecretBasic(secret);
    const insecure = this.settings.issuer.startsWith('http://');
    let config: oidc.Configuration;
    try {
      config = await oidc.discovery(new URL(this.settings.issuer), this.settings.clientId, metadata, auth, {
        timeout: TIMEOUT_SECONDS,
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
        ...(this.fetchImpl ? { [oidc.customFetch]: this.fetchImpl } : {}),
      });
    } catch (err) {
      throw explain(err, this.settings.issuer, 'discovery', this.now());
    }
    this.cached = { config, at: Date.now(), skew };
    return config;
  }

  /** Starts a sign-in: the values to keep, and the provider URL to send the browser to. */
  async begin(next: string): Promise<{ pending: PendingLogin; url: URL }> {
    const config = await this.configuration();
    const pending: PendingLogin = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
      next,
    };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUrl,
      scope: this.settings.scopes.join(' '),
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      // OpenID Connect Core 11: offline access needs prompt=consent, else providers drop the scope
      ...(this.settings.scopes.includes('offline_access') ? { prompt: 'consent' } : {}),
    });
    return { pending, url };
  }

  /**
   * Finishes a sign-in from the callback URL the browser arrived at (its query holds `code` and
   * `state`, or the provider's `error`). The URL's origin and path are replaced by the configured
   * redirect URL, which is what the provider compares against.
   */
  async finish(callbackQuery: URLSearchParams, pending: PendingLogin): Promise<OidcResult> {
    const config = await this.configuration();
    const current = new URL(this.settings.redirectUrl);
    current.search = callbackQuery.toString();
    try {
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      if (!claims)
        throw new AppError(
          502,
          'oidc_no_id_token',
          'the provider sent no ID token; check that the "openid" scope is in auth.oidc.scopes',
        );
      const completed = await this.complete({ ...claims }, tokens.access_token, claims.sub, 'sign-in');
      return { claims: completed ?? { ...claims }, refreshToken: tokens.refresh_token };
    } catch (err) {
      throw explain(err, this.settings.issuer, 'sign-in', this.now());
    }
  }

  /**
   * The claims podgate reads that these claims lack: the name (when neither it nor email is there;
   * a sign-in needs it, the leaver check does not) and the groups.
   */
  missingClaims(claims: Record<string, unknown> | undefined, needName = true): string[] {
    const has = (k: string): boolean => claims?.[k] !== undefined && claims[k] !== null;
    const missing: string[] = [];
    if (needName && !has(this.settings.usernameClaim) && !has('email'))
      missing.push(this.settings.usernameClaim);
    if (!has(this.settings.groupsClaim)) missing.push(this.settings.groupsClaim);
    return missing;
  }

  /**
   * Completes ID-token claims from the UserInfo endpoint when the ID token lacks one podgate reads.
   * OpenID Connect Core 5.4: for the code flow a provider may (oidc-provider, GitLab for groups)
   * serve the profile, email and groups claims only at UserInfo. The UserInfo `sub` must equal
   * `subject` (openid-client checks it); claims the ID token has win, token claims (iss, aud, …)
   * never come from UserInfo. Without a UserInfo endpoint the claims are returned as they are.
   */
  async complete(
    claims: Record<string, unknown> | undefined,
    accessToken: string,
    subject: string,
    step: 'sign-in' | 'refresh' = 'refresh',
  ): Promise<Record<string, unknown> | undefined> {
    if (this.missingClaims(claims, step === 'sign-in').length === 0) return claims;
    const config = await this.configuration();
    if (!config.serverMetadata().userinfo_endpoint) return claims;
    let info: Record<string, unknown>;
    try {
      info = { ...(await oidc.fetchUserInfo(config, accessToken, subject)) };
    } catch (err) {
      throw explain(err, this.settings.issuer, step, this.now());
    }
    const merged: Record<string, unknown> = { ...(claims ?? { sub: subject }) };
    for (const [k, v] of Object.entries(info)) {
      if (TOKEN_CLAIMS.has(k) || v === undefined || v === null) continue;
      if (merged[k] === undefined || merged[k] === null) merged[k] = v;
    }
    return merged;
  }

  /**
   * Uses a refresh token; a provider answer of `invalid_grant` is a {@link GrantRevoked}. Returns the
   * new refresh token (the old one when the provider does not rotate) before anything else is read,
   * so that the caller can save it first: a provider with single-use refresh tokens has spent the old one.
   */
  async refresh(refreshToken: string): Promise<RefreshResult> {
    const config = await this.configuration();
    try {
      const tokens = await oidc.refreshTokenGrant(config, refreshToken);
      const claims = tokens.claims();
      return {
        claims: claims ? { ...claims } : undefined,
        refreshToken: tokens.refresh_token ?? refreshToken,
        accessToken: tokens.access_token,
      };
    } catch (err) {
      if (err instanceof oidc.ResponseBodyError && err.error === 'invalid_grant') {
        throw new GrantRevoked(err.error_description ?? err.error);
      }
      throw explain(err, this.settings.issuer, 'refresh', this.now());
    }
  }
}

function causeMessage(err: unknown): string {
  let e: unknown = err;
  const parts: string[] = [];
  for (let i = 0; i < 4 && e instanceof Error; i++) {
    parts.push(e.message);
    e = e.cause;
  }
  return parts.join(': ');
}

/**
 * Turns what openid-client throws into a message a person can act on: who must fix what.
 * The detail from the library stays in `cause` for the log.
 */
export function explain(
  err: unknown,
  issuer: string,
  step: 'discovery' | 'sign-in' | 'refresh',
  now: Date = new Date(),
): AppError {
  if (err instanceof AppError) return err;
  const detail = causeMessage(err);
  log.warn({ step, issuer, err: detail }, 'OpenID Connect step failed');
  if (err instanceof oidc.AuthorizationResponseError) {
    const what = err.error_description ? `${err.error}: ${err.error_description}` : err.error;
    if (err.error === 'access_denied')
      return new AppError(403, 'oidc_denied', `the provider refused the sign-in (${what})`);
    if (/redirect_uri/i.test(what))
      return new AppError(
        502,
        'oidc_redirect',
        `the provider rejected the redirect URL (${what}): auth.oidc.redirectUrl must be registered at the provider exactly`,
        { cause: err },
      );
    return new AppError(
      502,
      'oidc_provider_error',
      `the provider answered with an error (${what}); try again`,
      {
        cause: err,
      },
    );
  }
  if (err instanceof oidc.ResponseBodyError) {
    const what = err.error_description ? `${err.error}: ${err.error_description}` : err.error;
    if (err.error === 'invalid_client' || err.error === 'unauthorized_client')
      return new AppError(
        502,
        'oidc_client',
        `the provider does not accept podgate's client credentials (${what}): check auth.oidc.clientId and clientSecretFile`,
        { cause: err },
      );
    if (/redirect_uri/i.test(what))
      return new AppError(
        502,
        'oidc_redirect',
        `the provider rejected the redirect URL (${what}): auth.oidc.redirectUrl must match the one registered at the provider`,
        { cause: err },
      );
    return new AppError(400, 'oidc_rejected', `the provider refused the sign-in (${what}); start again`, {
      cause: err,
    });
  }
  const code = (err as { code?: string }).code;
  if (code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED') {
    return new AppError(
      400,
      'oidc_clock',
      "the provider's ID token is expired or not yet valid: podgate's clock and the provider's differ " +
        `(podgate's time is ${now.toISOString()}); check NTP on both machines, then sign in again`,
      { cause: err },
    );
  }
  if (code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' || code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
    if (/"?state"?/.test(detail) && !/nonce/.test(detail))
      return new BadRequest(
        'the sign-in response does not belong to this browser (state mismatch); start again',
      );
    if (/nonce/.test(detail))
      return new BadRequest('the ID token does not belong to this sign-in (nonce mismatch); start again');
    if (/iss/.test(detail))
      return new AppError(
        400,
        'oidc_issuer',
        `the ID token was issued by another provider than ${issuer}; start again (if it persists, check auth.oidc.issuer)`,
        { cause: err },
      );
    if (/aud|azp/.test(detail))
      return new AppError(
        400,
        'oidc_audience',
        'the ID token was issued to another application; start again',
        {
          cause: err,
        },
      );
    return new BadRequest(`the provider's answer failed a check (${detail}); start again`);
  }
  if (/state/i.test(detail) && /mismatch|unexpected|missing/i.test(detail))
    return new BadRequest(
      'the sign-in response does not belong to this browser (state mismatch); start again',
    );
  if (
    err instanceof TypeError ||
    code === 'OAUTH_TIMEOUT' ||
    code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' ||
    code === 'OAUTH_RESPONSE_IS_NOT_JSON'
  ) {
    return new Upstream(
      `the sign-in provider at ${issuer} is not reachable or not answering properly (${step}: ${detail}); ` +
        'try again in a few minutes, or ask your admin to check it',
      err,
    );
  }
  if (step === 'discovery')
    return new Upstream(
      `the sign-in provider at ${issuer} gave an unusable discovery document (${detail}); check auth.oidc.issuer`,
      err,
    );
  return new AppError(
    400,
    'oidc_invalid',
    `the provider's answer could not be verified (${detail}); start again`,
    {
      cause: err,
    },
  );
}
