/** The real `podgate serve` as a child process on a free loopback port, for the HTTP benchmarks. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** Starts `serve` on `dataDir` with `env` added; resolves once it prints its URL. */
export function startServe(
  dataDir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0'],
      {
        env: { ...process.env, PODGATE_VPN_ENDPOINTS: 'vpn.example.test', ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    const timer = setTimeout(() => reject(new Error('podgate serve did not start')), 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /podgate web app on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]! });
      }
    });
    child.on('exit', (code) => reject(new Error(`podgate serve exited with ${code}`)));
  });
}
