import { Router, type Request, type Response } from 'express';
import { AppError, BadRequest, Forbidden } from '../../lib/errors.js';
import type { Config } from '../../config/schema.js';
import { csrfProtect, requireUser } from '../auth.js';
import { setRetryAfter } from '../error-handler.js';
import { clearSessionCookie, randomToken, safeEqual, setSessionCookie } from '../session.js';
import { createDeviceBody, loginBody, parse } from '../validation.js';
import { sendProfile, type RouteDeps } from './api.js';
import { allowProbeOrigins } from './connection-check.js';
import '../types.js';

/** Fixed notices shown after a redirect (?done=...): no user text is ever echoed from the URL. */
export const NOTICES: Record<string, string> = {
  revoked: 'The certificate was revoked. The VPN server refuses it from now on.',
  'user-created': 'The user was created.',
  'user-updated': 'The user was updated.',
  'user-disabled': 'The user was disabled, signed out everywhere, and their certificates were revoked.',
  'user-enabled': 'The user was enabled. Their old certificates stay revoked.',
  disconnected: 'The session was disconnected.',
  discovered: 'Cluster discovery finished.',
  'deploy-started': 'Deploy started; progress appears below.',
  'signed-out': 'You are signed out.',
  'token-deleted': 'The API token was deleted.',
  'access-applied': 'The access rules were applied; every enforcement point gets them within seconds.',
  'group-created': 'The group was created.',
  'group-deleted': 'The group was deleted.',
  'group-updated': 'The group membership was changed.',
};

/** A 4xx from a form, to show beside it with the values typed (never a password). */
export interface FormError {
  message: string;
  field?: string;
  values: Record<string, string>;
}

export function formError(err: unknown, body: Record<string, unknown>): FormError | undefined {
  if (!(err instanceof AppError) || err.status < 400 || err.status >= 500 || err.status === 403)
    return undefined;
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(body ?? {})) {
    if (typeof v === 'string' && k !== 'password' && k !== '_csrf') values[k] = v.slice(0, 16_384);
  }
  return { message: err.message, field: err.field, values };
}

export function notice(req: Request): string | undefined {
  const done = typeof req.query.done === 'string' ? req.query.done : '';
  return NOTICES[done];
}

/**
 * The sign-in form has no session yet, so its CSRF token is a double-submit cookie: a random value
 * in a cookie that only this site can set, echoed in a hidden field. It stops other sites from
 * signing a browser into an attacker's account.
 */
function loginCsrfCookie(req: Request): string {
  return req.secure ? '__Host-podgate_login' : 'podgate_login';
}

/** Only same-site relative paths are followed after sign-in (no open redirect). */
export function safeNext(value: unknown): string {
  return typeof value === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(value) && !value.startsWith('/login')
    ? value
    : '/devices';
}

export function renderLogin(req: Request, res: Response, status: number, error?: string, name = ''): void {
  const token = randomToken();
  res.cookie(loginCsrfCookie(req), token, {
    httpOnly: true,
    secure: req.secure,
    sameSite: 'strict',
    path: '/',
  });
  res.status(status).render('login', {
    title: 'Sign in',
    loginCsrf: token,
    error,
    name,
    next: safeNext(req.query.next ?? (req.body as Record<string, unknown> | undefined)?.next),
    notice: notice(req),
  });
}

export function userPages({ actions, usage, connectionCheck }: RouteDeps, config: Config): Router {
  const r = Router();

  r.get('/', (req, res) => res.redirect(303, req.auth ? '/devices' : '/login'));

  r.get('/login', (req, res) => {
    if (req.auth) return res.redirect(303, '/devices');
    renderLogin(req, res, 200);
  });

  r.post('/login', async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const cookie = (req.cookies as Record<string, string> | undefined)?.[loginCsrfCookie(req)];
    if (typeof body._csrf !== 'string' || !cookie || !safeEqual(body._csrf, cookie)) {
      throw new Forbidden('invalid or missing CSRF token; reload the page and try again');
    }
    let input;
    try {
      input = parse(loginBody, body);
    } catch (err) {
      return renderLogin(
        req,
        res,
        400,
        (err as BadRequest).message,
        typeof body.name === 'string' ? body.name.slice(0, 64) : '',
      );
    }
    try {
      const { session } = await actions.login(input.name, input.password, req.ip ?? 'unknown');
      res.clearCookie(loginCsrfCookie(req), {
        path: '/',
        secure: req.secure,
        sameSite: 'strict',
        httpOnly: true,
      });
      setSessionCookie(req, res, session.id);
      res.redirect(303, safeNext(body.next));
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      if (status !== 401 && status !== 429) throw err;
      setRetryAfter(res, err);
      renderLogin(req, res, status, (err as Error).message, input.name);
    }
  });

  r.use(csrfProtect);

  r.post('/logout', requireUser, (req, res) => {
    actions.logout(req.auth!.user, req.auth!.session);
    clearSessionCookie(req, res);
    res.redirect(303, '/login?done=signed-out');
  });

  const devicesPage = async (req: Request, res: Response, status = 200, form?: FormError): Promise<void> => {
    const check = await connectionCheck?.plan();
    if (check) allowProbeOrigins(res, check);
    res.status(status).render('devices', {
      title: 'My devices',
      nav: 'devices',
      devices: actions.myDevices(req.auth!.user),
      notice: notice(req),
      keyType: config.vpn.keyType,
      warnDays: config.vpn.expiryWarningDays,
      importLinkMinutes: config.web.importLinkMinutes,
      sessions: usage?.history({ user: req.auth!.user.name, limit: 10 }) ?? [],
      check,
      form,
    });
  };

  r.get('/devices', requireUser, (req, res) => devicesPage(req, res));

  r.post('/devices', requireUser, async (req, res) => {
    const raw = req.body as Record<string, unknown>;
    let issued;
    try {
      const body = parse(createDeviceBody, raw);
      issued = await actions.createDevice(req.auth!.user, {
        name: body.name,
        keyType: body.keyType || undefined,
        csr: body.csr || undefined,
      });
    } catch (err) {
      // Input problems come back on the same page, next to the form, with what was typed.
      const form = formError(err, raw);
      if (!form) throw err;
      setRetryAfter(res, err);
      return devicesPage(req, res, (err as AppError).status, form);
    }
    // The page's script waits for this cookie to know the download has arrived, then reloads the list
    // (a timer alone could reload before a slow RSA key is ready and cancel the download).
    if (typeof raw.dl === 'string' && /^[A-Za-z0-9]{8,32}$/.test(raw.dl)) {
      res.cookie('podgate_dl', raw.dl, { path: '/', sameSite: 'strict', secure: req.secure, maxAge: 60_000 });
    }
    sendProfile(res, issued);
  });

  r.get('/devices/:id/revoke', requireUser, async (req, res) => {
    const cert = await actions.ownDevice(req.auth!.user, String(req.params.id));
    res.render('device-revoke', {
      title: 'Revoke device',
      nav: 'devices',
      device: actions.getCert(cert.serial),
    });
  });

  r.post('/devices/:id/revoke', requireUser, async (req, res) => {
    await actions.revokeMyDevice(req.auth!.user, String(req.params.id));
    res.redirect(303, '/devices?done=revoked');
  });

  r.get('/setup', requireUser, async (_req, res) => {
    // Configured values win; otherwise what cluster discovery found (the same rule the profiles use).
    const net = await actions.network();
    const v = config.vpn;
    res.render('setup', {
      title: 'Set-up instructions',
      nav: 'setup',
      clusterDomain: net.dnsDomain,
      dnsServer: net.dnsServers[0],
      podRoutes: net.podCidrs,
      serviceRoutes: net.serviceCidrs,
      clientSubnet: v.clientSubnet,
      endpoint: net.endpoints[0],
      port: v.port,
      proto: v.proto,
    });
  });

  return r;
}
