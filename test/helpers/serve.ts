/**
 * The real `podgate serve` as a child process on loopback, for integration tests and the HTTP benchmarks.
 * Started with no cluster (KUBECONFIG and KUBERNETES_SERVICE_HOST emptied, whatever this machine's
 * environment says), an EC P-384 CA (fast) and a VPN endpoint; `env` overrides any of these.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './cli.js';

export interface ServeOptions {
  /** `--data-dir`; left out, the environment (PODGATE_DATA_DIR) decides. */
  dataDir?: string;
  /** Added to (and overriding) the defaults above and this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** `--port`; 0 (default) lets the system choose a free one. */
  port?: number | string;
  /** Node options before the CLI (`--cpu-prof`, heap sizing): what `node` flags the image runs with. */
  nodeArgs?: string[];
}

export interface Serving {
  child: ChildProcess;
  /** The address serve printed (`podgate web app on <url>`). */
  url: string;
  /** stdout so far. */
  stdout(): string;
  /** stderr so far. */
  stderr(): string;
  /** SIGTERM, resolving with the exit code once it has exited (at once when it already has). */
  stop(): Promise<number | null>;
}

/** `serve` exited before it listened (a refused config, a missing prerequisite). */
export class ServeExitedEarly extends Error {
  constructor(
    readonly code: number | null,
    /** stdout and stderr. */
    readonly output: string,
  ) {
    super(`podgate serve exited with ${code} before it listened:\n${output}`);
  }
}

const STARTED = /podgate web app on (http:\/\/\S+)/;
const START_TIMEOUT_MS = 30_000;

function spawnServe(options: ServeOptions): ChildProcess {
  const where = options.dataDir === undefined ? [] : ['--data-dir', options.dataDir];
  return spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      CLI,
      'serve',
      ...where,
      '--host',
      '127.0.0.1',
      '--port',
      String(options.port ?? 0),
    ],
    {
      env: {
        ...process.env,
        KUBECONFIG: '',
        KUBERNETES_SERVICE_HOST: '',
        PODGATE_VPN_ENDPOINTS: 'vpn.example.test',
        PODGATE_LOG_LEVEL: 'error',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

/**
 * Starts `serve` and resolves once it prints its URL. Rejects, with its output, when it exits first or
 * has not started within 30 s (then it is killed).
 */
export function startServe(options: ServeOptions = {}): Promise<Serving> {
  const child = spawnServe(options);
  let stdout = '';
  let stderr = '';
  // 'close', not 'exit': by then everything it wrote has been read.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const serving = (url: string): Serving => ({
    child,
    url,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`podgate serve did not start within 30 s:\n${stdout}\n${stderr}`));
    }, START_TIMEOUT_MS);
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
      const m = STARTED.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(serving(m[1]!));
      }
    });
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new ServeExitedEarly(code, stdout + stderr));
    });
  });
}

/**
 * Runs `serve` until it exits by itself or listens (then stops it with SIGTERM): its exit code, whether
 * it started, and everything it wrote (stdout and stderr).
 */
export async function serveOnce(
  options: ServeOptions = {},
): Promise<{ code: number | null; started: boolean; out: string }> {
  try {
    const s = await startServe(options);
    const code = await s.stop();
    return { code, started: true, out: s.stdout() + s.stderr() };
  } catch (err) {
    if (!(err instanceof ServeExitedEarly)) throw err;
    return { code: err.code, started: false, out: err.output };
  }
}
