import { Router } from 'express';
import type { Registry } from 'prom-client';
import { NotFound, Unauthorized } from '../../lib/errors.js';
import type { AppContext } from '../../services/context.js';
import { safeEqual } from '../session.js';

/**
 * Unauthenticated endpoints: the CRL for anyone who checks certificates, probes. `/metrics` (counts,
 * per-route status counters, versions) only with `Authorization: Bearer <metrics token>` when a token
 * is configured, and not at all otherwise (404: the separate metrics listener serves it then).
 */
export function publicRouter(ctx: AppContext, registry: Registry, metricsToken?: string): Router {
  const r = Router();
  r.get('/crl.pem', async (_req, res) => {
    const crl = await ctx.revocation.ensureFreshCrl();
    res.set({
      'Content-Type': 'application/pkix-crl',
      'Cache-Control': 'no-cache',
      'Last-Modified': crl.thisUpdate.toUTCString(),
    });
    res.send(crl.pem);
  });
  r.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  // Ready when the database answers and a CRL exists (a server without one cannot enforce revocation).
  r.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    let ok = true;
    try {
      await ctx.store.getSetting('readyz');
      checks.store = 'ok';
    } catch {
      checks.store = 'failed';
      ok = false;
    }
    try {
      // Signs the first CRL on a fresh data dir; afterwards this is a cheap read.
      checks.crl = (await ctx.revocation.ensureFreshCrl()) ? 'ok' : 'missing';
    } catch {
      checks.crl = 'failed';
    }
    if (checks.crl !== 'ok') ok = false;
    res.status(ok ? 200 : 503).json({ ready: ok, checks });
  });
  r.get('/metrics', async (req, res) => {
    if (metricsToken === undefined) throw new NotFound();
    const m = /^Bearer (\S+)$/.exec(req.get('authorization')?.trim() ?? '');
    if (!m || !safeEqual(m[1]!, metricsToken)) {
      res.set('WWW-Authenticate', 'Bearer realm="podgate metrics"');
      throw new Unauthorized('the metrics token is required');
    }
    res.set('Cache-Control', 'no-store');
    res.type(registry.contentType).send(await registry.metrics());
  });
  return r;
}
