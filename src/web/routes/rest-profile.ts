/**
 * OpenVPN Connect's "Import profile → URL" (Access Server's REST profile download, as openvpn3's
 * doc/webauth.md describes it): `GET /rest/GetUserlogin` or `/rest/GetAutologin` with HTTP Basic
 * credentials answers a profile as text/plain; a failure is an XML `<Error>` body with an HTTP error
 * status, the form Connect parses and shows.
 *
 * Credentials: a local user's name and password, or a user's name and one of their API tokens
 * (`pgt_…`) as the password — the way single sign-on users can use it too. A single sign-on user who
 * types a password gets a message pointing at the devices page's one-use link instead.
 *
 * podgate's profiles authenticate with their certificate only, so both methods answer the same
 * profile (an Access Server "autologin" profile); each call makes a new device `connect-<UTC time>`.
 */
import { randomBytes } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { AppError, Unauthorized } from '../../lib/errors.js';
import { logger } from '../../lib/logger.js';
import type { AppContext } from '../../services/context.js';
import { importBase } from '../../services/import-links.js';
import type { TokenService } from '../../services/tokens.js';
import type { User } from '../../store/types.js';
import type { WebActions } from '../actions.js';
import { setRetryAfter } from '../error-handler.js';

const log = logger.child({ module: 'rest-profile' });

export interface RestProfileDeps {
  ctx: AppContext;
  actions: WebActions;
  tokens: TokenService;
  publicUrl: string | undefined;
  now?: () => Date;
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The XML error body Access Server sends and Connect parses. */
export function restErrorXml(type: string, message: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<Error>',
    `  <Type>${xmlEscape(type)}</Type>`,
    '  <Synopsis>REST method failed</Synopsis>',
    `  <Message>${xmlEscape(message)}</Message>`,
    '</Error>',
    '',
  ].join('\n');
}

function sendError(res: Response, status: number, type: string, message: string): void {
  res.status(status).type('text/xml; charset=utf-8').send(restErrorXml(type, message));
}

/** `Basic base64(user:password)` → the two parts; undefined when absent or malformed. */
export function parseBasic(header: string | undefined): { name: string; secret: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]{1,1024})\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { name: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

/** A name for the new device: `connect-YYYYMMDD-HHMMSS-xxxx` (UTC; the suffix keeps two in a second apart). */
function deviceName(at: Date): string {
  const iso = at.toISOString();
  const stamp = `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}`;
  return `connect-${stamp}-${randomBytes(2).toString('hex')}`;
}

export function restProfileRouter(deps: RestProfileDeps): Router {
  const { ctx, actions, tokens } = deps;
  const now = deps.now ?? ctx.now;
  const r = Router();

  const authenticate = async (req: Request): Promise<User | 'sso'> => {
    const basic = parseBasic(req.get('authorization'));
    if (!basic) throw new Unauthorized('credentials required');
    const ip = clientIp(req);
    if (basic.secret.startsWith('pgt_')) {
      let user: User | undefined;
      try {
        user = (await tokens.authenticate(basic.secret)).user;
      } catch {
        user = undefined;
      }
      // A wrong token counts like a wrong password, so guessing meets the same throttle.
      if (!user || user.name !== basic.name) actions.refuseCredential(basic.name, ip, 'rest-import');
      return user!;
    }
    if (await actions.isSingleSignOnOnly(basic.name, ip)) return 'sso';
    return actions.checkPassword(basic.name, basic.secret, ip, 'rest-import');
  };

  const handler = async (req: Request, res: Response): Promise<void> => {
    res.set('Cache-Control', 'no-store');
    try {
      const user = await authenticate(req);
      if (user === 'sso') {
        let where = '/devices';
        try {
          where = `${importBase(deps.publicUrl, `${req.protocol}://${req.get('host') ?? 'localhost'}`)}/devices`;
        } catch {
          /* the relative path is still a hint */
        }
        sendError(
          res,
          403,
          'Access denied',
          `This account signs in with single sign-on, not a password. Sign in at ${where} and choose "Add to OpenVPN Connect" (or use an API token as the password). (9008)`,
        );
        return;
      }
      const issued = await actions.createDevice(user, { name: deviceName(now()) });
      await ctx.store.appendAudit({
        actor: user.name,
        action: 'rest-import',
        target: issued.device.commonName,
        result: 'ok',
        details: { ip: clientIp(req), method: req.path.slice('/rest/'.length), serial: issued.device.serial },
      });
      res.set('X-Certificate-Serial', issued.device.serial);
      res.status(200).type('text/plain; charset=utf-8').send(issued.profile);
    } catch (err) {
      if (err instanceof AppError && err.status === 401) {
        res.set('WWW-Authenticate', 'Basic realm="podgate", charset="UTF-8"');
        sendError(res, 401, 'Authorization Required', `AUTH_FAILED: ${err.message} (9007)`);
      } else if (err instanceof AppError && err.status < 500 && err.status !== 401) {
        setRetryAfter(res, err);
        sendError(res, err.status, err.status === 429 ? 'Too Many Requests' : 'Access denied', err.message);
      } else if (err instanceof AppError) {
        setRetryAfter(res, err);
        sendError(res, err.status, 'Internal Server Error', err.message);
      } else {
        log.error({ err }, 'REST profile download failed');
        sendError(res, 500, 'Internal Server Error', 'internal error; the server log has the details');
      }
    }
  };
  r.get(['/rest/GetUserlogin', '/rest/GetAutologin'], handler);
  return r;
}
