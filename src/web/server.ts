import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { logger } from '../lib/logger.js';
import { createApp, type AppDeps } from './app.js';

const log = logger.child({ module: 'web' });

export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  /** The separate /metrics listener, when web.metricsPort is set. */
  metricsUrl?: string;
  /**
   * Stops listening, lets the requests in flight finish (their connections close after the answer; idle
   * ones at once) and resolves when every connection is gone; connections still busy after the drain
   * time are cut.
   */
  close(): Promise<void>;
}

/**
 * How long `close()` waits for requests in flight (SIGTERM in a pod: a node drain or a rolling update).
 * Below the pod's default grace period (30 s), so the process still ends on its own terms.
 */
export const DRAIN_MS = 10_000;

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function urlOf(server: Server, host: string, scheme: string): string {
  const port = (server.address() as AddressInfo).port;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** A listener that answers GET /metrics and nothing else (no sign-in: bind it where only scrapers reach). */
function metricsServer(registry: Registry): Server {
  return createHttpServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) =>
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' }).end(text),
      (err: unknown) => {
        log.warn({ err }, 'metrics scrape failed');
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics failed\n');
      },
    );
  });
}

/**
 * Listens on config.web.host:port (port 0 picks a free one), HTTPS when both tlsCertFile and
 * tlsKeyFile are set. Re-signs the CRL first when it is due, so /crl.pem and /readyz serve a fresh one at once.
 */
export async function startServer(
  deps: AppDeps & { host?: string; port?: number; drainMs?: number },
): Promise<RunningServer> {
  const { web } = deps.ctx.config;
  await deps.ctx.revocation.ensureFreshCrl();
  const app = createApp(deps);
  const tls = web.tlsCertFile && web.tlsKeyFile;
  const server: Server = tls
    ? createHttpsServer({ cert: readFileSync(web.tlsCertFile!), key: readFileSync(web.tlsKeyFile!) }, app)
    : createHttpServer(app);
  // Slow clients must not hold sockets forever; keep-alive stays on for API clients.
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  // While closing, every answer still to be sent ends its connection (a kept-alive client reconnects,
  // to another replica): those in flight when close() starts, and those that come after it.
  let closing = false;
  const inFlight = new Set<ServerResponse>();
  server.prependListener('request', (_req, res: ServerResponse) => {
    if (closing) res.shouldKeepAlive = false;
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });
  const host = deps.host ?? web.host;
  await listen(server, deps.port ?? web.port, host);
  let metrics: Server | undefined;
  if (web.metricsPort !== undefined) {
    metrics = metricsServer(app.locals.metricsRegistry as Registry);
    try {
      await listen(metrics, web.metricsPort, web.metricsHost);
    } catch (err) {
      server.close();
      throw err;
    }
  }
  // Expired sessions are refused on read anyway; pruning only keeps the table small.
  // The VPN session history is kept sessions.retainDays; used or expired import links a day.
  const prune = async (): Promise<void> => {
    try {
      const at = (deps.now ?? (() => new Date()))();
      const { store, config } = deps.ctx;
      await store.pruneSessions(at);
      const history = await store.pruneSessionHistory(
        new Date(at.getTime() - config.sessions.retainDays * 86_400_000),
      );
      await store.pruneImportLinks(new Date(at.getTime() - 86_400_000));
      if (history > 0) log.info({ removed: history }, 'old VPN sessions pruned');
    } catch (err) {
      log.warn({ err }, 'session prune failed');
    }
  };
  await prune();
  const pruneTimer = setInterval(() => void prune(), 3_600_000);
  pruneTimer.unref();
  const port = (server.address() as AddressInfo).port;
  const url = urlOf(server, host, tls ? 'https' : 'http');
  const metricsUrl = metrics && `${urlOf(metrics, web.metricsHost, 'http')}/metrics`;
  log.info({ url, ...(metricsUrl ? { metricsUrl } : {}) }, 'web app listening');
  return {
    url,
    port,
    server,
    ...(metricsUrl ? { metricsUrl } : {}),
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(pruneTimer);
        metrics?.close();
        metrics?.closeAllConnections();
        // A request in flight may already have committed (a certificate issued, a revocation saved):
        // cutting its connection loses the answer, and a retry then finds the name taken. So: no new
        // connections, no keep-alive after the answers still to come, idle connections closed as they
        // turn idle, and only what is still busy after the drain time is cut.
        closing = true;
        for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        const cut = setTimeout(() => server.closeAllConnections(), deps.drainMs ?? DRAIN_MS);
        server.close(() => {
          clearInterval(idle);
          clearTimeout(cut);
          resolve();
        });
      }),
  };
}
