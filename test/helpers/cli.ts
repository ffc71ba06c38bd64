import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The esbuild bundle that ships (`bin`, `npm start`, the image): dist/bundle/podgate.js. */
export const BUNDLE = fileURLToPath(new URL('../../bundle/podgate.js', import.meta.url));
/** The tsc output of src/cli.ts (dist/src/cli.js), next to this compiled helper (dist/test/helpers). */
export const CLI_TSC = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
/** What the CLI suites run: the bundle, since it is what users and the image run. */
export const CLI = BUNDLE;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs node with these arguments (argv array, no shell) and collects its exit code and output. */
export function runNode(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Runs the real CLI as a child process (argv array, no shell). */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runNode([CLI, ...args], { ...process.env, PODGATE_LOG_LEVEL: 'error', ...env });
}

/** A temp dir removed by the returned cleanup function. */
export function tempDir(prefix = 'podgate-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Pulls an inline block (<cert>…</cert>) out of an .ovpn profile. */
export function profileBlock(profile: string, tag: string): string {
  const m = new RegExp(`<${tag}>\\n([\\s\\S]*?)\\n</${tag}>`).exec(profile);
  if (!m) throw new Error(`profile has no <${tag}> block`);
  return m[1]! + '\n';
}

/**
 * Stops a `serve` this test runs in-process: calls only the SIGTERM listeners added since `before`
 * (`process.listeners('SIGTERM')` taken before serve started), never `process.emit('SIGTERM')`, which
 * would also run other suites' listeners in the same mocha process (the test cluster exits on SIGTERM).
 */
export function stopInProcessServe(before: readonly unknown[]): void {
  for (const l of process.listeners('SIGTERM'))
    if (!before.includes(l)) (l as (s: string) => void)('SIGTERM');
}
