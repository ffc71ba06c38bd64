import { createServer, type Server } from 'node:http';
import { logger } from '../lib/logger.js';
import { PROBE_PATH, probeAnswer } from '../lib/connection-probe.js';

const log = logger.child({ module: 'probe-responder' });

export interface ProbeResponderOptions {
  /** Address to listen on: the server's tunnel-side address (`server run`), or all of the pod's. */
  host: string;
  port: number;
  /** The web app's origin (web.publicUrl); unset, browsers cannot read the answer. */
  allowedOrigin: string | undefined;
  /** Retry interval while the address does not exist yet (the tun device comes up with openvpn). */
  retryMs?: number;
}

/**
 * The small HTTP listener beside openvpn that answers "Check my connection" (lib/connection-probe.ts)
 * and nothing else: every other path is 404. It binds as soon as the address exists (retrying while
 * openvpn has not made the tun device yet) and never throws after start.
 */
export class ProbeResponder {
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: ProbeResponderOptions) {}

  /** The bound port once listening (a test may pass port 0). */
  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  start(): void {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://probe');
      if (url.pathname !== PROBE_PATH) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
        return;
      }
      const a = probeAnswer(
        req.method ?? 'GET',
        url.searchParams.get('nonce') ?? undefined,
        req.headers.origin,
        this.o.allowedOrigin,
      );
      res.writeHead(a.status, a.headers).end(req.method === 'HEAD' ? undefined : a.body);
    });
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (this.stopped) return;
      // EADDRNOTAVAIL: the tun device (and its address) is not there yet.
      if (err.code !== 'EADDRNOTAVAIL') log.warn({ err: String(err) }, 'probe listener failed; retrying');
      this.timer = setTimeout(() => this.listen(server), this.o.retryMs ?? 1000);
      this.timer.unref();
    });
    server.on('listening', () =>
      log.info({ host: this.o.host, port: this.port }, 'connection probe listening'),
    );
    this.server = server;
    this.listen(server);
  }

  private listen(server: Server): void {
    if (!this.stopped) server.listen(this.o.port, this.o.host);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const s = this.server;
    this.server = undefined;
    if (s?.listening) await new Promise<void>((done) => s.close(() => done()));
  }
}
