import { Router } from 'express';
import type { AppContext } from '../../services/context.js';
import { caStatus } from '../../services/ca-status.js';
import { requireAdmin } from '../auth.js';

/** `GET /admin/ca`: the CAs in force, expiry warnings, and during a rotation the devices still on the old CA. */
export function caPages(ctx: AppContext): Router {
  const r = Router();
  r.get('/ca', requireAdmin, async (_req, res) => {
    // This page lists the warning itself, with the rest of the CA's state: no banner above it.
    res.render('admin/ca', {
      title: 'Certificate authority',
      nav: 'ca',
      ...(await caStatus(ctx)),
      caBanner: undefined,
    });
  });
  // The JSON moved to GET /api/v1/ca (JSON errors, the API's authentication); the old address stays
  // as a permanent redirect that keeps the method.
  r.get('/api/ca', (_req, res) => {
    res.redirect(308, '/api/v1/ca');
  });
  return r;
}
