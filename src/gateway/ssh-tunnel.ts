/**
 * Reaching the Kubernetes API server through an SSH bastion (`kubernetes.sshBastion` = user@host[:port],
 * key in `kubernetes.sshBastionIdentityFile`). A listener on 127.0.0.1:<random> forwards every connection
 * over one SSH session (ssh2 `forwardOut`, i.e. direct-tcpip) to the API server's host:port as the
 * bastion sees it. The Kubernetes helper swaps the kubeconfig's server URL for `url`, and for https sets
 * `tlsServerName` so the API server certificate is still checked against its real name.
 * Host keys: the same known_hosts / pinned fingerprints as gateways; an unknown bastion is refused
 * unless `acceptNewHostKey` is passed. No reconnect: when the SSH session drops, requests fail and the
 * caller opens a new tunnel.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { BadRequest } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { connectSsh, type SshConnectOptions, type SshSession } from './ssh-session.js';
import { parseTarget } from './target.js';

const log = logger.child({ module: 'gateway.tunnel' });

export interface BastionTunnel {
  /** The URL to use instead of the API server URL (unchanged when no bastion is configured). */
  url: string;
  /** For https through the tunnel: the name the API server certificate must carry (kubeconfig tls-server-name). */
  tlsServerName?: string;
  /** Stops the listener, drops open connections, ends the SSH session. Safe to call twice. */
  close(): Promise<void>;
}

export interface BastionDeps {
  connect?: (options: SshConnectOptions) => Promise<SshSession>;
  acceptNewHostKey?: boolean;
}

function apiEndpoint(apiServerUrl: string): { url: URL; host: string; port: number } {
  let url: URL;
  try {
    url = new URL(apiServerUrl);
  } catch {
    throw new BadRequest(`kubeconfig server "${apiServerUrl}" is not a URL`, 'kubernetes.server');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new BadRequest(`kubeconfig server "${apiServerUrl}" must be http(s)`, 'kubernetes.server');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return { url, host, port };
}

/**
 * Opens the tunnel when `config.kubernetes.sshBastion` is set; otherwise returns the URL unchanged.
 * Everything is validated before connecting (bad bastion, missing key file, bad URL -> 400 naming the key).
 */
export async function withBastion(
  config: Config,
  apiServerUrl: string,
  deps: BastionDeps = {},
): Promise<BastionTunnel> {
  const k = config.kubernetes;
  if (!k.sshBastion) return { url: apiServerUrl, close: async () => {} };
  const target = parseTarget('kubernetes.sshBastion', k.sshBastion);
  if (!k.sshBastionIdentityFile)
    throw new BadRequest(
      'kubernetes.sshBastionIdentityFile is required with kubernetes.sshBastion',
      'kubernetes.sshBastionIdentityFile',
    );
  let privateKey: Buffer;
  try {
    privateKey = readFileSync(k.sshBastionIdentityFile);
  } catch (err) {
    throw new BadRequest(
      `kubernetes.sshBastionIdentityFile ${k.sshBastionIdentityFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'kubernetes.sshBastionIdentityFile',
    );
  }
  const api = apiEndpoint(apiServerUrl);
  const session = await (deps.connect ?? connectSsh)({
    target,
    privateKey,
    // a quiet tunnel (e.g. only a watch open) must not be dropped by NAT or firewall idle timers
    keepaliveIntervalMs: 15_000,
    hostKeys: {
      knownHostsFile: resolve(config.gateway.knownHostsFile ?? join(config.dataDir, 'known_hosts')),
      pinned: config.gateway.hostKeyFingerprints,
      acceptNew: deps.acceptNewHostKey === true,
    },
  });
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.pause();
    session.forwardOut(api.host, api.port).then(
      (channel) => {
        channel.on('error', () => sock.destroy());
        sock.on('close', () => channel.destroy());
        channel.on('close', () => sock.destroy());
        sock.pipe(channel).pipe(sock);
        sock.resume();
      },
      (err: Error) => {
        log.warn({ err: err.message, api: `${api.host}:${api.port}` }, 'bastion forward failed');
        sock.destroy();
      },
    );
  });
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok());
    });
  } catch (err) {
    session.close();
    throw err;
  }
  const local = (server.address() as { port: number }).port;
  const url = new URL(api.url.toString());
  url.hostname = '127.0.0.1';
  url.port = String(local);
  log.info({ bastion: k.sshBastion, api: `${api.host}:${api.port}`, local }, 'API server tunnel open');
  let closed: Promise<void> | undefined;
  return {
    // URL#toString adds a trailing "/" to a bare origin; keep the caller's form
    url:
      apiServerUrl.endsWith('/') || api.url.pathname !== '/'
        ? url.toString()
        : url.toString().replace(/\/$/, ''),
    ...(api.url.protocol === 'https:' ? { tlsServerName: api.host } : {}),
    close() {
      closed ??= new Promise<void>((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
        session.close();
      });
      return closed;
    },
  };
}
