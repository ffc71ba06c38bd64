import { Router, type Request, type Response } from 'express';
import { IMPORT_PATH, importBase, type ImportLinkService } from '../../services/import-links.js';
import { csrfProtect, requireUser } from '../auth.js';
import { qrDataUrl } from '../qr.js';
import { importLinkBody, parse } from '../validation.js';
import { documentedRouter } from '../api-router.js';
import '../types.js';

function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

function requestOrigin(req: Request): string {
  return `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}

/**
 * The one-use profile URL OpenVPN Connect fetches after `openvpn://import-profile/…`. Public: the token
 * in the query is the credential (OpenVPN's import-profile rule: no further login, no interaction).
 */
export function importProfileRoute(links: ImportLinkService): Router {
  const r = Router();
  r.get(IMPORT_PATH, async (req: Request, res: Response) => {
    const token = typeof req.query.token === 'string' ? req.query.token : '';
    const issued = await links.redeem(token, clientIp(req));
    res.set({
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      'Content-Type': 'application/x-openvpn-profile; charset=utf-8',
      'Content-Disposition': `attachment; filename="${issued.cert.commonName}.ovpn"`,
      'X-Certificate-Serial': issued.cert.serial,
    });
    res.status(200).send(issued.profile);
  });
  return r;
}

/** Making links: the devices page (form → page with link + QR) and the JSON API. */
export function importLinkRoutes(links: ImportLinkService, publicUrl: string | undefined): Router {
  const r = documentedRouter();
  r.use(['/api/v1/devices/import-link', '/devices/import-link'], csrfProtect);
  const make = async (req: Request) => {
    const body = parse(importLinkBody, req.body);
    const made = await links.create({
      user: req.auth!.user,
      deviceName: body.name,
      ...(body.keyType ? { keyType: body.keyType } : {}),
      ip: clientIp(req),
      base: importBase(publicUrl, requestOrigin(req)),
    });
    return { ...made, qr: await qrDataUrl(made.link) };
  };
  r.post('/api/v1/devices/import-link', requireUser, async (req, res) => {
    const made = await make(req);
    res.status(201).json({
      link: made.link,
      url: made.url,
      expiresAt: made.expiresAt,
      deviceName: made.deviceName,
      qr: made.qr,
    });
  });
  r.post('/devices/import-link', requireUser, async (req, res) => {
    const made = await make(req);
    res.status(201).render('device-import', {
      title: 'Add to OpenVPN Connect',
      nav: 'devices',
      ...made,
    });
  });
  return r;
}
