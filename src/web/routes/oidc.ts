import { createHash } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { PendingLogin } from '../../auth/oidc-client.js';
import { AppError, NotFound, TooManyRequests } from '../../lib/errors.js';
import { logger } from '../../lib/logger.js';
import type { AppContext } from '../../services/context.js';
import type { OidcParts } from '../../services/oidc.js';
import { requestHost } from '../auth.js';
import { randomToken, setSessionCookie, type SessionManager } from '../session.js';
import { renderLogin, safeNext } from './pages-user.js';
import '../types.js';

const log = logger.child({ module: 'web-oidc' });

/** Sign-ins started per address and minute: each one keeps a small row for ten minutes. */
const STARTS_PER_MINUTE = 30;

/** A sign-in at the provider must come back within this time. */
const PENDING_MINUTES = 10;

/**
 * The cookie that ties the provider's answer to the browser that started the sign-in. SameSite=Lax,
 * not Strict: the provider sends the browser back with a cross-site top-level GET, which Strict
 * cookies do not ride on. It holds only a random id; state, nonce and PKCE verifier stay server-side.
 */
function pendingCookie(req: Request): string {
  return req.secure ? '__Host-podgate_oidc' : 'podgate_oidc';
}

function storeKey(id: string): string {
  return 'oidc-pending:' + createHash('sha256').update(id).digest('hex');
}

export interface OidcRouteDeps {
  ctx: AppContext;
  sessions: SessionManager;
  oidc: OidcParts | undefined;
  now: () => Date;
}

/**
 * `GET /auth/oidc/start` and `GET /auth/oidc/callback`, plus what the sign-in page needs to show the
 * "Sign in with …" button and hide the password form when `auth.local` is `off`. Every failure lands
 * on the sign-in page with a message saying what to do; no session is made.
 */
export function oidcRoutes({ ctx, sessions, oidc, now }: OidcRouteDeps): Router {
  const r = Router();
  const settings = ctx.config.auth.oidc;

  r.use((req, res, next) => {
    // A link, not a form: CSP form-action 'self' also applies to the redirect on to the provider.
    const back = safeNext(req.query.next ?? (req.body as Record<string, unknown> | undefined)?.next);
    if (settings)
      res.locals.oidcLogin = {
        name: settings.displayName,
        adminsOnly: ctx.config.auth.local === 'admins-only',
        href: `/auth/oidc/start?next=${encodeURIComponent(back)}`,
      };
    res.locals.passwordLoginOff = ctx.config.auth.local === 'off';
    next();
  });

  const fail = (req: Request, res: Response, err: unknown): void => {
    if (!(err instanceof AppError)) throw err;
    if (err.status >= 500) log.warn({ code: err.code, err: err.message }, 'single sign-on failed');
    renderLogin(req, res, err.status, err.message);
  };

  const startLimit = rateLimit({
    windowMs: 60_000,
    limit: STARTS_PER_MINUTE,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req, _res, next) =>
      next(new TooManyRequests('too many sign-ins started from this address; wait a minute')),
  });

  r.get('/auth/oidc/start', startLimit, async (req, res) => {
    if (!oidc || !settings) throw new NotFound('single sign-on is not configured');
    try {
      const expected = new URL(settings.redirectUrl);
      const host = requestHost(req);
      if (host !== expected.host) {
        // The provider would send the browser to another address, where this browser's sign-in cookie
        // does not exist: the sign-in could never finish.
        throw new AppError(
          500,
          'oidc_redirect_host',
          `single sign-on is set up for ${expected.origin} (auth.oidc.redirectUrl) but this page was opened as ` +
            `${req.protocol}://${host ?? '?'}: open podgate at ${expected.origin}, or ask your admin to fix auth.oidc.redirectUrl`,
        );
      }
      const next = safeNext(req.query.next);
      const { pending, url } = await oidc.client.begin(next);
      const id = randomToken();
      const expires = new Date(now().getTime() + PENDING_MINUTES * 60_000);
      await ctx.store.setSession(storeKey(id), JSON.stringify(pending), expires, null);
      res.cookie(pendingCookie(req), id, {
        httpOnly: true,
        secure: req.secure,
        sameSite: 'lax',
        path: '/',
        maxAge: PENDING_MINUTES * 60_000,
      });
      res.redirect(303, url.href);
    } catch (err) {
      fail(req, res, err);
    }
  });

  r.get('/auth/oidc/callback', async (req, res) => {
    if (!oidc || !settings) throw new NotFound('single sign-on is not configured');
    const id = (req.cookies as Record<string, string> | undefined)?.[pendingCookie(req)];
    res.clearCookie(pendingCookie(req), { httpOnly: true, secure: req.secure, sameSite: 'lax', path: '/' });
    try {
      const rec = id ? await ctx.store.getSession(storeKey(id), now()) : undefined;
      if (id) await ctx.store.destroySession(storeKey(id)); // one use only, whatever happens next
      if (!rec) {
        throw new AppError(
          400,
          'oidc_no_pending',
          'this sign-in was not started in this browser, was already used, or took longer than ' +
            `${PENDING_MINUTES} minutes: start again with "Sign in with ${settings.displayName}"`,
        );
      }
      const pending = JSON.parse(rec.data) as PendingLogin;
      const query = new URL(req.originalUrl, 'http://callback.invalid').searchParams;
      const result = await oidc.client.finish(query, pending);
      const user = await oidc.accounts.signIn(result.claims, result.refreshToken);
      // The groups the provider just reported may change what the user's devices reach: published
      // before the sign-in answers, so the pages that follow show what is enforced (never rejects).
      await ctx.access.changed();
      const session = await sessions.create(user.id);
      await ctx.store.appendAudit({
        actor: user.name,
        action: 'login',
        target: user.name,
        result: 'ok',
        details: { ip: req.ip ?? 'unknown', via: 'oidc' },
      });
      setSessionCookie(req, res, session.id);
      // A page, not a redirect: the session cookie is SameSite=Strict, and a redirect chain that began
      // at the provider counts as cross-site, so the next page would not see it. A same-site hop does.
      res.status(200).render('oidc-continue', { layout: false, next: pending.next });
    } catch (err) {
      if (err instanceof AppError && err.status < 500 && err.status !== 403)
        await ctx.store.appendAudit({
          actor: 'anonymous',
          action: 'login.failed',
          target: 'oidc',
          result: 'error',
          details: { ip: req.ip ?? 'unknown', via: 'oidc', reason: err.message.slice(0, 300) },
        });
      fail(req, res, err);
    }
  });

  return r;
}
