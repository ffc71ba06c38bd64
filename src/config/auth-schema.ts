import { z } from 'zod';

/** The path the provider sends the browser back to; `auth.oidc.redirectUrl` must end in it. */
export const OIDC_CALLBACK_PATH = '/auth/oidc/callback';

const httpUrl = z
  .string()
  .url('must be an absolute URL')
  .refine((v) => /^https?:\/\//.test(v), 'must start with https:// (or http:// for a test set-up)');

/**
 * OpenID Connect single sign-on. Absent: only local passwords. Groups decide who may sign in
 * (`allowedGroups`, empty = everyone the provider signs in) and who is admin (`adminGroups`).
 */
const oidcSchema = z
  .object({
    /** The provider's issuer URL (its discovery document is at <issuer>/.well-known/openid-configuration). */
    issuer: httpUrl,
    clientId: z.string().min(1),
    /** File holding the client secret; absent: a public client (PKCE only). */
    clientSecretFile: z.string().min(1).optional(),
    /** Shown on the sign-in page as "Sign in with <displayName>". */
    displayName: z.string().min(1).max(64).default('single sign-on'),
    /** Add `groups` (Dex, some Keycloak set-ups) and `offline_access` (leaver checks) where the provider knows them. */
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be a scope token'))
      .default(['openid', 'profile', 'email']),
    /** Claim that names the user; when absent in a token, `email` (its part before "@") is used. */
    usernameClaim: z.string().min(1).default('preferred_username'),
    groupsClaim: z.string().min(1).default('groups'),
    adminGroups: z.array(z.string().min(1)).default([]),
    /** Empty: everyone the provider signs in may use podgate. */
    allowedGroups: z.array(z.string().min(1)).default([]),
    /** This site's callback as registered at the provider, ending in /auth/oidc/callback. */
    redirectUrl: httpUrl.refine((v) => {
      try {
        return new URL(v).pathname === OIDC_CALLBACK_PATH;
      } catch {
        return false;
      }
    }, `must be this site's address followed by ${OIDC_CALLBACK_PATH}`),
    /** Accepted difference between podgate's clock and the provider's when checking token times. */
    clockToleranceSeconds: z.number().int().min(0).max(600).default(30),
    /** How often `serve` asks the provider about every user it holds a refresh token for; 0 turns it off. */
    syncIntervalHours: z
      .number()
      .min(0)
      .max(24 * 7)
      .default(24),
  })
  .strict();

export const authSchema = z
  .object({
    /**
     * Local passwords: `all` (default), `admins-only` (a break-glass admin keeps a password while
     * everyone else uses single sign-on) or `off`. API tokens work in every mode.
     */
    local: z.enum(['all', 'admins-only', 'off']).default('all'),
    oidc: oidcSchema.optional(),
  })
  .strict()
  .refine((a) => a.local === 'all' || a.oidc !== undefined, {
    message: 'auth.local other than "all" needs auth.oidc, or nobody could sign in',
    path: ['local'],
  })
  .default({});
