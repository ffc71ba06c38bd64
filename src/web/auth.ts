import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AppError, Forbidden, Unauthorized } from '../lib/errors.js';
import type { TokenService } from '../services/tokens.js';
import type { Store } from '../store/types.js';
import { safeEqual, sessionIdFrom, type SessionManager } from './session.js';
import './types.js';

/** sha256 hex of an API token (kept here too for callers that import it from the web layer). */
export { hashToken } from '../services/tokens.js';

/** JSON answers for /api and for clients that prefer JSON; HTML pages for browsers. */
export function wantsJson(req: Request): boolean {
  if (req.originalUrl.startsWith('/api/')) return true;
  return req.accepts(['html', 'json']) === 'json';
}

/**
 * The host the browser used (with its port): behind a trusted reverse proxy (`web.trustProxy` and a
 * connection from `web.trustedProxies`) the proxy's X-Forwarded-Host, else the Host header. A proxy
 * that rewrites Host (nginx's default `proxy_set_header Host $proxy_host`) must send X-Forwarded-Host.
 */
export function requestHost(req: Request): string | undefined {
  return req.host;
}

/**
 * Finds who is calling: `Authorization: Bearer <token>` (API tokens, no CSRF needed since browsers
 * never add that header by themselves) or the session cookie. A bad bearer token is a 401 right away,
 * not a silent fall-back to the cookie. Disabled users are treated as signed out.
 */
export function authenticate(store: Store, sessions: SessionManager, tokens: TokenService): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization');
    if (header !== undefined) {
      const m = /^Bearer ([\w.~+/=-]{16,256})$/.exec(header.trim());
      if (!m) throw new Unauthorized('invalid authorization header');
      // Unknown, expired and disabled-owner tokens are all 401; use is recorded to the minute.
      const { user } = await tokens.authenticate(m[1]!);
      req.auth = { user, via: 'token' };
      return next();
    }
    const sid = sessionIdFrom(req);
    if (sid) {
      const session = await sessions.load(sid);
      const user = session ? await store.getUserById(session.userId) : undefined;
      if (session && user && !user.disabled) {
        req.auth = { user, via: 'session', session };
        res.locals.user = { name: user.name, role: user.role, isAdmin: user.role === 'admin' };
        res.locals.csrfToken = session.csrfToken;
      } else if (session) {
        sessions.destroy(sid);
      }
    }
    next();
  };
}

/**
 * Signed-in users only: the API answers 401; pages send the browser to the sign-in form (a form posted
 * after the session expired lands there too, and the user comes back to the page after signing in).
 */
export function requireUser(req: Request, res: Response, next: NextFunction): void {
  if (req.auth) return next();
  if (!wantsJson(req)) {
    const back = req.method === 'GET' ? `?next=${encodeURIComponent(req.originalUrl)}` : '';
    return res.redirect(303, `/login${back}`);
  }
  throw new Unauthorized();
}

/** Admins only (403 for signed-in users with another role). */
export function requireAdmin(req: Request, res: Response, next: NextFunction): void {
  requireUser(req, res, () => {
    if (req.auth!.user.role !== 'admin') throw new Forbidden('administrators only');
    next();
  });
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Synchronizer-token CSRF check for every state change made with the session cookie: the token in
 * the session must come back in the `_csrf` form field or the `X-CSRF-Token` header. Bearer-token
 * requests skip it. Anonymous state changes (sign-in) are checked by their own route.
 */
export function csrfProtect(req: Request, _res: Response, next: NextFunction): void {
  if (SAFE_METHODS.has(req.method) || req.auth?.via !== 'session') return next();
  const body = req.body as Record<string, unknown> | undefined;
  const sent = req.get('x-csrf-token') ?? (typeof body?._csrf === 'string' ? body._csrf : undefined);
  if (!sent || !safeEqual(sent, req.auth.session!.csrfToken)) {
    throw new Forbidden('invalid or missing CSRF token; reload the page and try again');
  }
  next();
}

/**
 * Login CSRF guard for `POST /api/v1/login`, which has no session (and so no token) yet. A hostile page
 * can post a form (urlencoded, multipart, text/plain) cross-site without asking, but not JSON: that
 * needs a CORS preflight this app never grants. So the API sign-in takes JSON only, and a browser's
 * Origin, when sent, must be this site. Scripts (curl, the CLI) send no Origin and are unaffected.
 */
export function loginCsrfGuard(req: Request, _res: Response, next: NextFunction): void {
  if (!req.is('application/json')) {
    throw new AppError(
      415,
      'unsupported_media_type',
      'sign-in takes a JSON body (Content-Type: application/json)',
    );
  }
  const origin = req.get('origin');
  if (origin !== undefined && origin !== `${req.protocol}://${requestHost(req) ?? ''}`) {
    throw new Forbidden('sign-in from another site is not allowed (Origin does not match)');
  }
  next();
}
