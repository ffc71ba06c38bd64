/**
 * Runs node (the CLI) under the module-trace preload (module-trace.ts) and returns every module the
 * process resolved or required: how the start-up tests check what a command loads.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode } from './cli.js';

const TRACE_PRELOAD = fileURLToPath(new URL('./module-trace.js', import.meta.url));
export const HEAVY = [
  '@kubernetes/client-node',
  'express',
  'express-handlebars',
  'ssh2',
  'openid-client',
  'handlebars',
];
export const heavyIn = (ids: readonly string[]): string[] =>
  ids.filter((id) => HEAVY.some((p) => id.includes(`/node_modules/${p}/`)));

export interface Traced {
  code: number;
  stdout: string;
  stderr: string;
  modules: string[];
}

/** Runs node with the trace preload and returns every module id it loaded. */
export async function traced(
  args: readonly string[],
  dir: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Traced> {
  const file = join(dir, `trace-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, '');
  const r = await runNode(['--import', TRACE_PRELOAD, ...args], {
    ...process.env,
    KUBERNETES_SERVICE_HOST: '',
    PODGATE_KUBERNETES_KUBECONFIG: '',
    PODGATE_LOG_LEVEL: 'error',
    PODGATE_TEST_MODULE_TRACE: file,
    ...env,
  });
  return { ...r, modules: readFileSync(file, 'utf8').split('\n').filter(Boolean) };
}
