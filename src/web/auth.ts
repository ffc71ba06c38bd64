import { createHash } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Forbidden, Unauthorized } from '../lib/errors.js';
import type { Store } from '../store/types.js';
import { safeEqual, sessionIdFrom, type SessionManager } from './session.js';
import './types.js';

/** sha256 hex of an API token: the store keeps only this. Shared with `podgate token create`. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** JSON answers for /api and for clients that prefer JSON; HTML pages for browsers. */
export function wantsJson(req: Request): boolean {
  if (req.originalUrl.startsWith('/api/')) return true;
  return req.accepts(['html', 'json']) === 'json';
}

/**
 * Finds who is calling: `Authorization: Bearer <token>` (API tokens, no CSRF needed since browsers
 * never add that header by themselves) or the session cookie. A bad bearer token is a 401 right away,
 * not a silent fall-back to the cookie. Disabled users are treated as signed out.
 */
export function authenticate(store: Store, sessions: SessionManager, now: () => Date): RequestHandler {
  return (req, res, next) => {
    const header = req.get('authorization');
    if (header !== undefined) {
      const m = /^Bearer ([\w.~+/=-]{16,256})$/.exec(header.trim());
      if (!m) throw new Unauthorized('invalid authorization header');
      const token = store.findTokenByHash(hashToken(m[1]!));
      const user = token ? store.getUserById(token.userId) : undefined;
      if (!token || !user || user.disabled) throw new Unauthorized('invalid token');
      // "last used" to the minute is enough, and spares a database write on every API call.
      const at = now();
      if (!token.lastUsedAt || at.getTime() - token.lastUsedAt.getTime() >= 60_000)
        store.touchToken(token.id, at);
      req.auth = { user, via: 'token' };
      return next();
    }
    const sid = sessionIdFrom(req);
    if (sid) {
      const session = sessions.load(sid);
      const user = session ? store.getUserById(session.userId) : undefined;
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
