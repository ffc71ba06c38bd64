import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, and resolves with the exit code once it is gone. */
  stop(): Promise<number | null>;
}

/**
 * The real `podgate serve` (`node dist/src/cli.js serve`) on a free loopback port, with no cluster
 * whatever the machine's environment says; resolves once it prints its URL.
 */
export function startServeProcess(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, 'serve', '--host', '127.0.0.1', '--port', '0'], {
      env: { ...process.env, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', PODGATE_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`podgate serve did not start:\n${out}`));
    }, 30_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`podgate serve exited with ${code}:\n${out}`));
    };
    child.on('exit', onExit);
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /podgate web app on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve({
        child,
        url: m[1]!,
        output: () => out,
        stop: () =>
          child.exitCode !== null || child.signalCode !== null
            ? Promise.resolve(child.exitCode)
            : new Promise((done) => {
                child.once('exit', (code) => done(code));
                child.kill('SIGTERM');
              }),
      });
    });
  });
}
