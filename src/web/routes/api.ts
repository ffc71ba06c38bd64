import { Router, type Request, type Response } from 'express';
import { NotFound } from '../../lib/errors.js';
import type { RevocationReason } from '../../store/types.js';
import { userView, type IssuedDevice, type WebActions } from '../actions.js';
import type { AdminData } from '../admin-data.js';
import { csrfProtect, loginCsrfGuard, requireAdmin, requireUser } from '../auth.js';
import type { DeployTracker } from '../deploy-tracker.js';
import type { ConnectionCheckService } from '../../services/connection-check.js';
import type { UsageService } from '../../services/usage.js';
import { clearSessionCookie, setSessionCookie } from '../session.js';
import {
  auditApiQuery,
  certApiQuery,
  createDeviceBody,
  createUserBody,
  loginBody,
  parse,
  patchUserBody,
  revokeBody,
} from '../validation.js';
import { keysetPage, keysetPosition, listPage, pageQuery } from '../pagination.js';
import { API_PREFIX, documentedRouter } from '../api-router.js';
import '../types.js';

export interface RouteDeps {
  actions: WebActions;
  /** The session history (developer's own sessions on the devices page). */
  usage?: UsageService;
  /** "Check my connection" on the devices page. */
  connectionCheck?: ConnectionCheckService;
  admin: AdminData;
  deploys: DeployTracker;
  now: () => Date;
}

/** Sends a freshly issued profile: once, never cached, as a download named after the common name. */
export function sendProfile(res: Response, issued: IssuedDevice): void {
  res.set({
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    'Content-Type': 'application/x-openvpn-profile; charset=utf-8',
    'Content-Disposition': `attachment; filename="${issued.filename}"`,
    'X-Certificate-Serial': issued.device.serial,
  });
  res.status(201).send(issued.profile);
}

function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

/** The JSON API under /api/v1: same powers as the pages, cookie + CSRF or Bearer token. */
export function apiRouter({ actions, admin, deploys }: RouteDeps): Router {
  const r = documentedRouter(API_PREFIX);

  r.post('/login', loginCsrfGuard, async (req, res) => {
    const body = parse(loginBody, req.body);
    const { user, session } = await actions.login(body.name, body.password, clientIp(req));
    setSessionCookie(req, res, session.id);
    res.json({ user: userView(user), csrfToken: session.csrfToken });
  });

  r.use(csrfProtect);

  r.post('/logout', requireUser, async (req, res) => {
    await actions.logout(req.auth!.user, req.auth!.session);
    clearSessionCookie(req, res);
    res.status(204).end();
  });

  r.get('/me', requireUser, (req, res) => {
    res.json({
      user: userView(req.auth!.user),
      ...(req.auth!.session ? { csrfToken: req.auth!.session.csrfToken } : {}),
    });
  });

  r.get('/devices', requireUser, async (req, res) => {
    res.json(listPage(await actions.myDevices(req.auth!.user), parse(pageQuery, req.query)));
  });

  r.post('/devices', requireUser, async (req, res) => {
    const body = parse(createDeviceBody, req.body);
    const issued = await actions.createDevice(req.auth!.user, {
      name: body.name,
      keyType: body.keyType || undefined,
      csr: body.csr || undefined,
    });
    if (req.accepts(['application/x-openvpn-profile', 'application/json']) === 'application/json') {
      res
        .set('Cache-Control', 'no-store')
        .status(201)
        .json({ device: issued.device, filename: issued.filename, profile: issued.profile });
      return;
    }
    sendProfile(res, issued);
  });

  r.get('/devices/:id', requireUser, async (req, res) => {
    const cert = await actions.ownDevice(req.auth!.user, String(req.params.id));
    res.json({ device: await actions.getCert(cert.serial) });
  });

  r.delete('/devices/:id', requireUser, async (req, res) => {
    res.json({ device: await actions.revokeMyDevice(req.auth!.user, String(req.params.id)) });
  });

  // Administrators from here on.
  r.get('/certs', requireAdmin, async (req, res) => {
    const q = parse(certApiQuery, req.query);
    const limit = q.limit ?? q.perPage;
    // a cursor holds the store's keyset position: the next page is read on from the index (deep pages
    // cost what page 1 costs); `page` alone still skips rows
    const at = q.cursor !== undefined ? keysetPosition(q.cursor) : { offset: (q.page - 1) * limit };
    const { total, items, nextCursor } = await actions.certWindow({
      ...q,
      limit,
      offset: at.offset,
      ...(at.after === undefined ? {} : { after: at.after }),
    });
    res.json(keysetPage(items, total, at.offset, limit, nextCursor));
  });
  r.get('/certs/:serial', requireAdmin, async (req, res) => {
    res.json({ cert: await actions.getCert(String(req.params.serial)) });
  });
  r.post('/certs/:serial/revoke', requireAdmin, async (req, res) => {
    const { reason } = parse(revokeBody, req.body);
    res.json({
      cert: await actions.revokeCert(req.auth!.user, String(req.params.serial), reason as RevocationReason),
    });
  });

  r.get('/users', requireAdmin, async (req, res) => {
    res.json(listPage((await admin.users()).map(userView), parse(pageQuery, req.query)));
  });
  r.post('/users', requireAdmin, async (req, res) => {
    const body = parse(createUserBody, req.body);
    res.status(201).json({ user: userView(await actions.createUser(req.auth!.user, body)) });
  });
  r.patch('/users/:name', requireAdmin, async (req, res) => {
    const patch = parse(patchUserBody, req.body);
    res.json({ user: userView(await actions.updateUser(req.auth!.user, String(req.params.name), patch)) });
  });

  r.get('/sessions', requireAdmin, async (req, res) => {
    const q = parse(pageQuery, req.query);
    res.json(listPage(await admin.listSessions(), q));
  });
  const disconnect = async (req: Request, res: Response): Promise<void> => {
    await admin.disconnect(req.auth!.user.name, String(req.params.cid));
    res.status(204).end();
  };
  r.post('/sessions/:cid/disconnect', requireAdmin, disconnect);
  r.delete('/sessions/:cid', requireAdmin, disconnect);

  r.get('/audit', requireAdmin, async (req, res) => {
    res.json(await admin.auditPage(parse(auditApiQuery, req.query)));
  });
  r.get('/ca', requireAdmin, async (_req, res) => {
    res.json(await admin.caView());
  });
  r.get('/crl', requireAdmin, async (_req, res) => {
    res.json(await admin.crl());
  });
  r.get('/gateways', requireAdmin, async (req, res) => {
    res.json(listPage(await admin.gateways(), parse(pageQuery, req.query)));
  });

  r.get('/cluster', requireAdmin, async (_req, res) => {
    res.json({ ...(await admin.clusterView()), deploy: deploys.get() });
  });
  r.post('/cluster/discover', requireAdmin, async (req, res) => {
    const result = await admin.requireCluster().discover();
    res.json({ discovery: result, ...(await admin.clusterView()) });
  });
  r.get('/cluster/status', requireAdmin, async (_req, res) => {
    const { raw, lines } = await admin.clusterStatus();
    res.json({ status: raw, lines });
  });
  r.get('/cluster/manifests', requireAdmin, async (req, res) => {
    const text = await admin.manifestsDownload(req.auth!.user.name);
    res
      .set('Content-Disposition', 'attachment; filename="podgate-manifests.yaml"')
      .type('application/yaml')
      .send(text);
  });
  r.get('/deploy', requireAdmin, (_req, res) => {
    res.json(deploys.get());
  });
  r.post('/deploy', requireAdmin, (req, res) => {
    // `{ "takeOver": true }`: replace a server another podgate manager (another CA) deployed here
    const takeOver = (req.body as { takeOver?: unknown } | undefined)?.takeOver === true;
    res.status(202).json(admin.startDeploy(deploys, req.auth!.user.name, { takeOver }));
  });

  r.use(() => {
    throw new NotFound('no such API endpoint');
  });
  return r;
}
