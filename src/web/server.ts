import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { logger } from '../lib/logger.js';
import { createApp, type AppDeps } from './app.js';

const log = logger.child({ module: 'web' });

export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port ?? web.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Expired sessions are refused on read anyway; pruning only keeps the table small.
  const prune = (): void => {
    try {
      deps.ctx.store.pruneSessions((deps.now ?? (() => new Date()))());
    } catch (err) {
      log.warn({ err }, 'session prune failed');
    }
  };
  prune();
  const pruneTimer = setInterval(prune, 3_600_000);
  pruneTimer.unref();
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `${tls ? 'https' : 'http'}://${shownHost}:${port}`;
  log.info({ url }, 'web app listening');
  return {
    url,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(pruneTimer);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
