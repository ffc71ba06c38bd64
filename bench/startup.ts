// CLI start-up: whole-process time of `podgate cert list` (and --help, a local-mode revoke) for the tsc
// output (dist/src/cli.js: how the CLI ran before the bundle) and the esbuild bundle that ships
// (dist/bundle/podgate.js, with its V8 code cache; and the same bundle without the cache, a copy in
// dist/), against `node -e 0` measured in the same rounds. Rounds interleave the
// commands so that load from elsewhere on the machine hits all of them alike. BENCH_BASELINE_CLI=<path
// to another build's cli.js> adds that build's `cert list` (its own data dir) to the same rounds, e.g. the
// main branch before this change. Prints medians and ratios; never fails on a time.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from './stats.js';

const BUNDLE = fileURLToPath(new URL('../bundle/podgate.js', import.meta.url));
const TSC = fileURLToPath(new URL('../src/cli.js', import.meta.url));

export interface StartupBenchResult {
  rounds: number;
  nodeMs: number;
  certListTscMs: number;
  certListBundleMs: number;
  /** The bundle compiled from source: what the code cache saves. */
  certListNoCacheMs: number;
  /** The same with a podgate.yaml (most installs have one: its parser is loaded then). */
  certListConfigBundleMs: number;
  helpBundleMs: number;
  revokeTscMs: number;
  revokeBundleMs: number;
  /** `cert list` of BENCH_BASELINE_CLI, when given. */
  certListBaselineMs?: number;
}

function timed(args: string[], env: NodeJS.ProcessEnv): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t;
  if (r.status !== 0)
    throw new Error(`${args.slice(0, 3).join(' ')}: exit ${r.status}: ${r.stderr.toString()}`);
  return ms;
}

export function runStartupBench(o: { rounds?: number } = {}): StartupBenchResult {
  const rounds = o.rounds ?? Number(process.env.BENCH_STARTUP_ROUNDS ?? 15);
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-startup-'));
  // beside dist/bundle, so that node_modules resolve from it
  const noCache = join(dirname(BUNDLE), '..', `bundle-no-cache-${process.pid}`);
  try {
    cpSync(dirname(BUNDLE), noCache, { recursive: true });
    rmSync(join(noCache, 'podgate-main.cache'));
    const NO_CACHE = join(noCache, 'podgate.js');
    const data = join(dir, 'data');
    const config = join(dir, 'podgate.yaml');
    writeFileSync(config, `dataDir: ${data}\nvpn:\n  endpoints: ["vpn.example.test"]\n`);
    writeFileSync(join(dir, 'admin.pw'), 'bench-admin-password\n', { mode: 0o600 });
    const env = {
      ...process.env,
      PODGATE_LOG_LEVEL: 'error',
      PODGATE_VPN_ENDPOINTS: 'vpn.example.test',
      PODGATE_ADMIN_PASSWORD_FILE: join(dir, 'admin.pw'),
      KUBERNETES_SERVICE_HOST: '',
      PODGATE_KUBERNETES_KUBECONFIG: '',
    };
    timed([BUNDLE, '--data-dir', data, 'init'], env);
    const baselineCli = process.env.BENCH_BASELINE_CLI;
    const baselineData = join(dir, 'baseline-data');
    if (baselineCli) timed([baselineCli, '--data-dir', baselineData, 'init'], env);
    for (let i = 0; i < 2 * rounds + 2; i++) {
      const out = join(dir, `d${i}.ovpn`);
      timed([BUNDLE, '--data-dir', data, 'cert', 'issue', `d${i}`, '--owner', 'admin', '--out', out], env);
    }
    const t: Record<Exclude<keyof StartupBenchResult, 'rounds'>, number[]> = {
      nodeMs: [],
      certListTscMs: [],
      certListBundleMs: [],
      certListNoCacheMs: [],
      certListConfigBundleMs: [],
      helpBundleMs: [],
      revokeTscMs: [],
      revokeBundleMs: [],
      certListBaselineMs: [],
    };
    let n = 0;
    for (let r = 0; r < rounds + 1; r++) {
      const warm = r === 0; // the first round fills the page cache; not counted
      const push = (k: keyof typeof t, ms: number) => !warm && t[k].push(ms);
      push('nodeMs', timed(['-e', '0'], env));
      push('certListTscMs', timed([TSC, '--data-dir', data, 'cert', 'list'], env));
      push('certListBundleMs', timed([BUNDLE, '--data-dir', data, 'cert', 'list'], env));
      push('certListNoCacheMs', timed([NO_CACHE, '--data-dir', data, 'cert', 'list'], env));
      push('certListConfigBundleMs', timed([BUNDLE, '--config', config, 'cert', 'list'], env));
      push('helpBundleMs', timed([BUNDLE, '--help'], env));
      push('revokeTscMs', timed([TSC, '--data-dir', data, 'cert', 'revoke', `d${n++}`], env));
      push('revokeBundleMs', timed([BUNDLE, '--data-dir', data, 'cert', 'revoke', `d${n++}`], env));
      if (baselineCli)
        push('certListBaselineMs', timed([baselineCli, '--data-dir', baselineData, 'cert', 'list'], env));
    }
    const result: StartupBenchResult = {
      rounds,
      nodeMs: median(t.nodeMs),
      certListTscMs: median(t.certListTscMs),
      certListBundleMs: median(t.certListBundleMs),
      certListNoCacheMs: median(t.certListNoCacheMs),
      certListConfigBundleMs: median(t.certListConfigBundleMs),
      helpBundleMs: median(t.helpBundleMs),
      revokeTscMs: median(t.revokeTscMs),
      revokeBundleMs: median(t.revokeBundleMs),
      ...(baselineCli ? { certListBaselineMs: median(t.certListBaselineMs) } : {}),
    };
    print(result);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(noCache, { recursive: true, force: true });
  }
}

function print(r: StartupBenchResult): void {
  const x = (ms: number) => `${ms.toFixed(0).padStart(5)} ms  ${(ms / r.nodeMs).toFixed(2)}x node -e 0`;
  console.log(`CLI start-up, whole process, medians of ${r.rounds} interleaved rounds`);
  console.log(`node -e 0 (baseline)               ${r.nodeMs.toFixed(0).padStart(5)} ms`);
  if (r.certListBaselineMs !== undefined)
    console.log(`cert list, BENCH_BASELINE_CLI      ${x(r.certListBaselineMs)}`);
  console.log(`cert list, tsc output              ${x(r.certListTscMs)}`);
  console.log(`cert list, bundle (ships)          ${x(r.certListBundleMs)}  [goal <= 1.7x]`);
  console.log(`cert list, bundle, no code cache   ${x(r.certListNoCacheMs)}`);
  console.log(`cert list, bundle, podgate.yaml    ${x(r.certListConfigBundleMs)}`);
  console.log(`--help, bundle                     ${x(r.helpBundleMs)}`);
  console.log(`cert revoke (local), tsc output    ${x(r.revokeTscMs)}`);
  console.log(`cert revoke (local), bundle        ${x(r.revokeBundleMs)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) runStartupBench();
