import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * Security headers. CSP allows only this origin (no inline script or style: the pages ship their
 * CSS and JS as files), forbids framing, sends no referrer. HSTS only when the request came over TLS:
 * sent over plain http it would be ignored at best and lock a local set-up out at worst.
 */
export function securityHeaders(): RequestHandler {
  const base = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        imgSrc: ["'self'", 'data:'],
      },
    },
    strictTransportSecurity: false,
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
    crossOriginEmbedderPolicy: false,
  });
  return (req, res, next) => {
    if (req.secure) res.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    base(req, res, next);
  };
}
