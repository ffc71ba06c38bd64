import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { AppError, BadRequest, NotFound } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { wantsJson } from './auth.js';
import './types.js';

const log = logger.child({ module: 'web' });

/** Gives every request an id (echoed in X-Request-Id) so a 500 shown to a user can be found in the log. */
export const requestId: RequestHandler = (req, res, next) => {
  req.requestId = randomUUID();
  res.set('X-Request-Id', req.requestId);
  next();
};

/** Unknown routes become a 404 AppError, rendered like every other error. */
export const notFound: RequestHandler = () => {
  throw new NotFound('page not found');
};

/**
 * Errors from express's own parts (body-parser: bad JSON, too large; serve-static: missing file) are
 * http-errors with a 4xx status; turn them into AppErrors with fixed, safe messages.
 */
function fromHttpError(err: unknown): AppError | undefined {
  // The router decodes path parameters with decodeURIComponent: a broken %-escape is the client's fault.
  if (err instanceof URIError) return new BadRequest('the URL has a malformed %-escape', 'url');
  const e = err as { status?: number; type?: string; expose?: boolean };
  if (typeof e?.status !== 'number' || e.status < 400 || e.status >= 500) return undefined;
  if (e.status === 404) return new NotFound('not found');
  if (typeof e.type === 'string') {
    const msg = e.type === 'entity.too.large' ? 'request body is too large' : 'request body is not valid';
    return new AppError(e.status, 'bad_request', msg, { field: 'body' });
  }
  return e.expose ? new AppError(e.status, 'bad_request', 'request not valid') : undefined;
}

/**
 * Sends `Retry-After` for an AppError that passes with time (a throttled sign-in, a used-up issue rate,
 * a full key-generation queue). Pages that render such an error themselves (the sign-in and devices
 * forms) call it too. A whole number of seconds, at least 1 (RFC 9110 delay-seconds).
 */
export function setRetryAfter(res: Response, err: unknown): void {
  if (!(err instanceof AppError) || err.retryAfterSeconds === undefined) return;
  res.set('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterSeconds))));
}

/**
 * The one error renderer. AppErrors show their status and safe message (and field); anything else is
 * a 500 with the request id and nothing more: no stack, no internal message.
 */
export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const known = err instanceof AppError ? err : fromHttpError(err);
  const status = known?.status ?? 500;
  if (!known) {
    log.error({ err, requestId: req.requestId, path: req.path }, 'request failed');
  } else if (status >= 500) {
    log.warn(
      { code: known.code, status, requestId: req.requestId, path: req.path, cause: known.cause },
      known.message,
    );
  } else {
    log.debug({ code: known.code, status, path: req.path }, known.message);
  }
  const body = {
    error: {
      code: known?.code ?? 'internal',
      message: known ? known.message : 'internal error',
      ...(known?.field ? { field: known.field } : {}),
      requestId: req.requestId,
    },
  };
  if (res.headersSent) {
    res.end();
    return;
  }
  if (status === 401) res.set('WWW-Authenticate', 'Bearer realm="podgate"');
  setRetryAfter(res, known);
  res.status(status);
  if (wantsJson(req)) {
    res.json(body);
    return;
  }
  res.render(
    'error',
    { title: `Error ${status}`, status, ...body.error },
    (renderErr: Error | null, html?: string) => {
      if (renderErr) {
        log.error({ err: renderErr }, 'error page failed to render');
        res.type('text/plain').send(`${body.error.message} (request ${req.requestId})`);
        return;
      }
      res.send(html);
    },
  );
};
