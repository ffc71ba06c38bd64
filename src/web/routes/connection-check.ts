import { Router, type Response } from 'express';
import { PROBE_PATH, probeAnswer } from '../../lib/connection-probe.js';
import type { CheckPlan } from '../../services/connection-check.js';

/**
 * The manager's own probe (its Service, reached through the tunnel by ClusterIP and by DNS name):
 * the same answer as the listener beside openvpn, for web.publicUrl's origin only. Public: it says
 * nothing but "reachable" and the caller's nonce.
 */
export function connectionProbeRoute(allowedOrigin: string | undefined): Router {
  const r = Router();
  r.all(PROBE_PATH, (req, res) => {
    const a = probeAnswer(req.method, req.query.nonce, req.get('origin'), allowedOrigin);
    res.status(a.status).set(a.headers).send(a.body);
  });
  return r;
}

/**
 * Lets the devices page fetch the plan's probe origins: its CSP gains `connect-src 'self' <origins>`
 * (the default-src 'self' of every other page stays as it is).
 */
export function allowProbeOrigins(res: Response, plan: CheckPlan): void {
  if (plan.origins.length === 0 || plan.unavailable) return;
  const csp = String(res.getHeader('Content-Security-Policy') ?? "default-src 'self'");
  res.setHeader('Content-Security-Policy', `${csp};connect-src 'self' ${plan.origins.join(' ')}`);
}
