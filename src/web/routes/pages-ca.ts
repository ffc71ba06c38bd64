import { Router } from 'express';
import type { AppContext } from '../../services/context.js';
import { caStatus } from '../../services/ca-status.js';
import { requireAdmin } from '../auth.js';

/** `GET /admin/ca`: the CAs in force, expiry warnings, and during a rotation the devices still on the old CA. */
export function caPages(ctx: AppContext): Router {
  const r = Router();
  r.get('/ca', requireAdmin, (_req, res) => {
    // This page lists the warning itself, with the rest of the CA's state: no banner above it.
    res.render('admin/ca', {
      title: 'Certificate authority',
      nav: 'ca',
      ...caStatus(ctx),
      caBanner: undefined,
    });
  });
  r.get('/api/ca', requireAdmin, (_req, res) => {
    const s = caStatus(ctx);
    res.json({
      ...s,
      onPreviousCa: s.onPreviousCa.map((c) => ({
        serial: c.serial,
        commonName: c.commonName,
        owner: c.ownerName,
      })),
    });
  });
  return r;
}
