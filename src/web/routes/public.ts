import { Router } from 'express';
import type { Registry } from 'prom-client';
import type { AppContext } from '../../services/context.js';

/** Unauthenticated endpoints: the CRL for anyone who checks certificates, probes, metrics. */
export function publicRouter(ctx: AppContext, registry: Registry): Router {
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
      ctx.store.getSetting('readyz');
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
  r.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return r;
}
