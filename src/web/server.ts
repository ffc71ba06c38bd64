import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
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
  close(): Promise<void>;
}

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
export async function startServer(deps: AppDeps & { host?: string; port?: number }): Promise<RunningServer> {
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
      const history = store.pruneSessionHistory(
        new Date(at.getTime() - config.sessions.retainDays * 86_400_000),
      );
      await store.pruneImportLinks(new Date(at.getTime() - 86_400_000));
      if (await history > 0) log.info({ removed: history }, 'old VPN sessions pruned');
    } catch (err) {
      log.warn({ err }, 'session prune failed');
    }
  };
  await prune();
  const pruneTimer = setInterval(prune, 3_600_000);
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
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
