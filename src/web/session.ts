import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { SessionStore } from '../store/types.js';

/**
 * Server-side web sessions kept in the store (SQLite). The cookie holds a random 32-byte id; the store
 * is keyed by its sha256, so a copy of the database gives no usable session. The session carries the
 * CSRF synchronizer token and the two clocks the timeouts need.
 */
export interface WebSession {
  /** The random id as sent in the cookie. */
  id: string;
  userId: number;
  csrfToken: string;
  createdAt: Date;
  lastSeenAt: Date;
}

interface SessionData {
  csrf: string;
  createdAt: string;
  lastSeenAt: string;
}

export interface SessionTimeouts {
  idleMinutes: number;
  absoluteHours: number;
}

/**
 * Browsers refuse a `__Host-` cookie without `Secure`, and `Secure` cookies are not sent over plain
 * http (except to localhost in some browsers only). So the prefixed name is used exactly when the
 * request arrived over TLS (directly, or through a trusted proxy that says so), and plain `podgate_sid`
 * otherwise, which keeps sign-in working on http://127.0.0.1 for a local set-up.
 */
export function sessionCookieName(secure: boolean): string {
  return secure ? '__Host-podgate_sid' : 'podgate_sid';
}

/** A random token, URL-safe. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Constant-time string comparison (false for different lengths). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function storeKey(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** Writes of "last seen" are throttled: a sign-in stays alive without one database write per request. */
const TOUCH_EVERY_MS = 60_000;

export class SessionManager {
  constructor(
    private readonly store: SessionStore,
    private readonly timeouts: SessionTimeouts,
    private readonly now: () => Date,
  ) {}

  private expiry(s: { createdAt: Date; lastSeenAt: Date }): Date {
    const idle = s.lastSeenAt.getTime() + this.timeouts.idleMinutes * 60_000;
    const absolute = s.createdAt.getTime() + this.timeouts.absoluteHours * 3_600_000;
    return new Date(Math.min(idle, absolute));
  }

  private async save(s: WebSession): Promise<void> {
    const data: SessionData = {
      csrf: s.csrfToken,
      createdAt: s.createdAt.toISOString(),
      lastSeenAt: s.lastSeenAt.toISOString(),
    };
    await this.store.setSession(storeKey(s.id), JSON.stringify(data), this.expiry(s), s.userId);
  }

  /** A brand-new session for a user who just signed in (always a fresh id: no fixation). */
  create(userId: number): WebSession {
    const at = this.now();
    const s: WebSession = {
      id: randomToken(),
      userId,
      csrfToken: randomToken(),
      createdAt: at,
      lastSeenAt: at,
    };
    this.save(s);
    return s;
  }

  /**
   * The live session for this cookie value, or undefined when unknown, expired (idle or absolute) or
   * anonymous. Refreshes the idle clock.
   */
  async load(id: string): Promise<WebSession | undefined> {
    if (!id || id.length > 128) return undefined;
    const now = this.now();
    const rec = await this.store.getSession(storeKey(id), now);
    if (!rec || rec.userId === null) return undefined;
    let data: SessionData;
    try {
      data = JSON.parse(rec.data) as SessionData;
    } catch {
      return undefined;
    }
    const s: WebSession = {
      id,
      userId: rec.userId,
      csrfToken: data.csrf,
      createdAt: new Date(data.createdAt),
      lastSeenAt: new Date(data.lastSeenAt),
    };
    // Check both clocks here too: the store only knows the expiry written at the last touch.
    if (this.expiry(s).getTime() <= now.getTime()) {
      this.destroy(id);
      return undefined;
    }
    if (now.getTime() - s.lastSeenAt.getTime() >= TOUCH_EVERY_MS) {
      s.lastSeenAt = now;
      this.save(s);
    }
    return s;
  }

  async destroy(id: string): Promise<void> {
    await this.store.destroySession(storeKey(id));
  }

  async destroyAllOf(userId: number): Promise<void> {
    await this.store.destroySessionsOfUser(userId);
  }
}

/** Sets the session cookie with the attributes the design asks for. */
export function setSessionCookie(req: Request, res: Response, id: string): void {
  res.cookie(sessionCookieName(req.secure), id, {
    httpOnly: true,
    secure: req.secure,
    sameSite: 'strict',
    path: '/',
  });
}

export function clearSessionCookie(req: Request, res: Response): void {
  res.clearCookie(sessionCookieName(req.secure), {
    httpOnly: true,
    secure: req.secure,
    sameSite: 'strict',
    path: '/',
  });
}

/** The session id the request carries, under the cookie name that fits its transport. */
export function sessionIdFrom(req: Request): string | undefined {
  const cookies = (req as Request & { cookies?: Record<string, string> }).cookies ?? {};
  const v = cookies[sessionCookieName(req.secure)];
  return typeof v === 'string' ? v : undefined;
}
