import { Router, type Request, type Response } from 'express';
import type { AppContext } from '../../services/context.js';
import { csrfProtect, requireUser } from '../auth.js';
import { deviceView } from '../actions.js';
import { sendProfile, type RouteDeps } from './api.js';
import { parse, renewDeviceBody } from '../validation.js';
import { documentedRouter } from '../api-router.js';

/**
 * Renewing one's own device: `POST /devices/:id/renew` (page form, answers with the .ovpn download) and
 * `POST /api/v1/devices/:id/renew` (JSON with the profile, or the profile itself). An optional `csr`
 * field keeps the new key on the device; a device issued from a CSR must send one (400 naming `csr`). Someone else's device
 * looks exactly like an unknown one (404).
 */
export function renewalRouter({ actions, now }: RouteDeps, ctx: AppContext): Router {
  const r = documentedRouter();
  const renew = async (req: Request) => {
    const user = req.auth!.user;
    const old = await actions.ownDevice(user, String(req.params.id));
    const body = parse(renewDeviceBody, req.body ?? {});
    const { cert, profile } = await ctx.renewal.renew({
      actor: user.name,
      serial: old.serial,
      selfService: true,
      ...(body.csr ? { csrPem: body.csr } : {}),
    });
    return { device: deviceView(cert, now()), profile, filename: `${cert.commonName}.ovpn` };
  };
  const send = (req: Request, res: Response, issued: Awaited<ReturnType<typeof renew>>) => {
    if (req.accepts(['application/x-openvpn-profile', 'application/json']) === 'application/json') {
      res.set('Cache-Control', 'no-store').status(201).json(issued);
      return;
    }
    sendProfile(res, issued);
  };
  r.post('/devices/:id/renew', requireUser, csrfProtect, async (req, res) =>
    send(req, res, await renew(req)),
  );
  r.post('/api/v1/devices/:id/renew', requireUser, csrfProtect, async (req, res) =>
    send(req, res, await renew(req)),
  );
  return r;
}
