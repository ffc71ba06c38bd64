/**
 * A client for OpenVPN's management interface on a unix socket. The protocol (checked against 2.6.14):
 * wait for the `>INFO:` greeting (after `ENTER PASSWORD:` + `SUCCESS:` when a password file is set), then one command
 * at a time; a reply is either one `SUCCESS:`/`ERROR:` line or lines ending in `END`. Lines starting with
 * `>` are real-time notifications and may arrive at any moment, even in the middle of a reply.
 * openvpn serves one management client at a time (a second connection waits, unanswered, until the
 * first closes; checked against 2.6.14): connect, do the work, close.
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { AppError, Upstream } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { parseStatus3, type ServerStatus } from './status.js';

const log = logger.child({ module: 'management' });

/** openvpn answered a command with `ERROR: ...` (the connection itself is fine). */
export class ManagementCommandFailed extends Upstream {
  constructor(
    /** The command's first word, e.g. `client-kill`. */
    readonly command: string,
    /** openvpn's text after `ERROR:`. */
    readonly reply: string,
  ) {
    super(`openvpn management: ${command}: ${reply}`);
  }
}

export interface ManagementOptions {
  socketPath: string;
  /** The management password (content of the password file), when the server asks for one. */
  password?: string;
  /** Time allowed for connecting, authenticating and the greeting. Default 5 s. */
  connectTimeoutMs?: number;
  /** Default time allowed for each command's reply. Default 5 s. */
  commandTimeoutMs?: number;
}

/** The operations the agent and the sessions views need; the real one is {@link ManagementClient}. */
export interface ManagementApi {
  command(cmd: string, timeoutMs?: number): Promise<string[]>;
  status(): Promise<ServerStatus>;
  clientKill(cid: number, halt: boolean): Promise<void>;
  close(): void;
}

interface Pending {
  cmd: string;
  lines: string[];
  resolve(lines: string[]): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** Connected management session. Emits `notification` (line without `>`) and `close`. */
export class ManagementClient extends EventEmitter implements ManagementApi {
  private buffer = '';
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private greeted = false;
  private passwordSent = false;
  private onGreeting: ((err?: Error) => void) | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly opts: ManagementOptions,
  ) {
    super();
  }

  /** Connects, authenticates and waits for the greeting. Throws Upstream (502) when the server is not there. */
  static connect(opts: ManagementOptions): Promise<ManagementClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path: opts.socketPath });
      const client = new ManagementClient(socket, opts);
      const timer = setTimeout(() => {
        client.onGreeting = undefined;
        socket.destroy();
        reject(
          new Upstream(
            `openvpn management: no greeting on ${opts.socketPath} within ${opts.connectTimeoutMs ?? 5000} ms`,
          ),
        );
      }, opts.connectTimeoutMs ?? 5000);
      client.onGreeting = (err) => {
        clearTimeout(timer);
        client.onGreeting = undefined;
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve(client);
      };
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => client.onData(chunk));
      socket.on('error', (e) => client.onEnd(new Upstream(`openvpn management: ${e.message}`, e)));
      socket.on('close', () => client.onEnd(new Upstream('openvpn management: connection closed')));
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /**
   * Sends one command and resolves with its reply lines (for `SUCCESS:` replies, the one line). An
   * `ERROR:` reply rejects with an AppError 502 holding openvpn's message. Commands are queued, never
   * interleaved. On timeout the connection is closed, because the reply order is lost.
   */
  command(cmd: string, timeoutMs = this.opts.commandTimeoutMs ?? 5000): Promise<string[]> {
    if (/[\r\n\0]/.test(cmd))
      return Promise.reject(new AppError(400, 'bad_command', 'management command must be one line'));
    const run = (): Promise<string[]> =>
      new Promise<string[]>((resolve, reject) => {
        if (this.closed) return reject(new Upstream('openvpn management: connection closed'));
        const timer = setTimeout(() => {
          this.pending = undefined;
          reject(
            new Upstream(`openvpn management: no reply to "${cmd.split(' ')[0]}" within ${timeoutMs} ms`),
          );
          this.close();
        }, timeoutMs);
        this.pending = { cmd, lines: [], resolve, reject, timer };
        this.socket.write(`${cmd}\n`);
      });
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** `status 3`, parsed. */
  async status(): Promise<ServerStatus> {
    return parseStatus3(await this.command('status 3'));
  }

  /**
   * `client-kill <CID> [HALT]`: with HALT the client exits (`server-pushed-halt`); without, it reconnects
   * (and faces the current CRL).
   */
  async clientKill(cid: number, halt: boolean): Promise<void> {
    if (!Number.isInteger(cid) || cid < 0)
      throw new AppError(400, 'bad_cid', `client id ${cid} is not a number`);
    await this.command(halt ? `client-kill ${cid} HALT` : `client-kill ${cid}`);
  }

  close(): void {
    if (this.closed) return;
    if (this.greeted && !this.socket.destroyed) {
      // A polite `quit` frees openvpn's single management slot at once; destroy if it lingers.
      this.socket.end('quit\n');
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else this.socket.destroy();
    this.onEnd(new Upstream('openvpn management: connection closed'));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.onLine(line);
    }
    // The password prompt has no line end.
    if (this.buffer.startsWith('ENTER PASSWORD:')) {
      this.buffer = this.buffer.slice('ENTER PASSWORD:'.length);
      this.onPasswordPrompt();
    }
  }

  private onPasswordPrompt(): void {
    if (this.opts.password === undefined) {
      this.onGreeting?.(new Upstream('openvpn management asks for a password and none is configured'));
      return;
    }
    // openvpn 2.6 answers a wrong password with a new prompt (no ERROR line); give up at once
    // rather than spend the three tries it allows.
    if (this.passwordSent) {
      this.onGreeting?.(new Upstream('openvpn management refused the password'));
      return;
    }
    this.passwordSent = true;
    this.socket.write(`${this.opts.password}\n`);
  }

  private onLine(line: string): void {
    if (line.startsWith('>')) {
      if (!this.greeted && line.startsWith('>INFO:')) {
        this.greeted = true;
        this.onGreeting?.();
        return;
      }
      this.emit('notification', line.slice(1));
      return;
    }
    if (!this.greeted) {
      if (line.startsWith('ERROR:'))
        this.onGreeting?.(new Upstream(`openvpn management refused the password: ${line}`));
      return; // "SUCCESS: password is correct" and friends
    }
    const p = this.pending;
    if (!p) {
      log.debug({ line }, 'unsolicited management line');
      return;
    }
    const done = (err?: Error): void => {
      clearTimeout(p.timer);
      this.pending = undefined;
      if (err) p.reject(err);
      else p.resolve(p.lines);
    };
    if (p.lines.length === 0 && line.startsWith('SUCCESS:')) {
      p.lines.push(line);
      done();
    } else if (p.lines.length === 0 && line.startsWith('ERROR:')) {
      done(new ManagementCommandFailed(p.cmd.split(' ')[0]!, line.slice(6).trim()));
    } else if (line === 'END') {
      done();
    } else {
      p.lines.push(line);
    }
  }

  private onEnd(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.onGreeting?.(err);
    if (this.pending) {
      clearTimeout(this.pending.timer);
      this.pending.reject(err);
      this.pending = undefined;
    }
    this.emit('close');
  }
}

/** Opens a session, runs `fn`, and always closes it (openvpn serves one management client at a time). */
export async function withManagement<T>(
  opts: ManagementOptions,
  fn: (m: ManagementApi) => Promise<T>,
): Promise<T> {
  const m = await ManagementClient.connect(opts);
  try {
    return await fn(m);
  } finally {
    m.close();
  }
}
