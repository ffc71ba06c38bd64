// Cluster mode, `podgate cert revoke` from the CLI call until the podgate-crl Secret is written on a real
// API server (test/cluster/control-plane.ts: the binaries built by `npm run build-test-cluster`). The CLI
// returns once the Secret is written, so its whole-process time is the figure; every call is a new
// process, i.e. every revoke is a "first" revoke. Interleaved with `node -e 0` and a local-mode
// `cert list` in the same rounds; BENCH_BASELINE_CLI=<another build's podgate.js> adds that build's
// cluster revoke (its own data dir and namespace), e.g. main before the Secret writer. A local-mode
// revoke (own data dir) in the same rounds shows what the cluster adds.
// Prints medians and the worst; never fails on a time.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ControlPlane } from '../test/cluster/control-plane.js';
import { rest } from '../test/cluster/kube-rest.js';

const BUNDLE = fileURLToPath(new URL('../bundle/podgate.js', import.meta.url));

export interface ClusterRevokeBenchResult {
  rounds: number;
  nodeMs: number;
  certListMs: number;
  /** The same revoke in local mode (no cluster): what the cluster adds is the difference. */
  localRevokeMs: number;
  revokeMs: { median: number; worst: number; first: number };
  baselineRevokeMs?: { median: number; worst: number; first: number };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const stats = (xs: number[]) => ({ median: median(xs), worst: Math.max(...xs), first: xs[0]! });

function timed(args: string[], env: NodeJS.ProcessEnv): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t;
  if (r.status !== 0)
    throw new Error(`${args.slice(1, 6).join(' ')}: exit ${r.status}: ${r.stderr.toString()}`);
  return ms;
}

export async function runClusterRevokeBench(o: { rounds?: number } = {}): Promise<ClusterRevokeBenchResult> {
  const rounds = o.rounds ?? Number(process.env.BENCH_CLUSTER_ROUNDS ?? 10);
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-kube-'));
  const cp = new ControlPlane({ dir: join(dir, 'cp'), nodePortRange: '30000-31999' });
  try {
    await cp.start();
    const builds: [string, string][] = [['bundle', BUNDLE]];
    if (process.env.BENCH_BASELINE_CLI) builds.push(['baseline', process.env.BENCH_BASELINE_CLI]);
    const envs = new Map<string, NodeJS.ProcessEnv>();
    for (const [name, cli] of builds) {
      const ns = `bench-revoke-${name}`;
      await rest(cp.adminCreds, 'POST', '/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns },
      });
      writeFileSync(join(dir, 'admin.pw'), 'bench-admin-password\n', { mode: 0o600 });
      const env = {
        ...process.env,
        HOME: dir,
        PODGATE_LOG_LEVEL: 'error',
        PODGATE_VPN_ENDPOINTS: '172.18.12.21',
        PODGATE_ADMIN_PASSWORD_FILE: join(dir, 'admin.pw'),
        PODGATE_KUBERNETES_KUBECONFIG: cp.kubeconfig,
        PODGATE_KUBERNETES_NAMESPACE: ns,
        PODGATE_DATA_DIR: join(dir, `data-${name}`),
      };
      envs.set(name, env);
      timed([cli, 'init'], env);
      for (let i = 0; i < rounds + 1; i++)
        timed(
          [cli, 'cert', 'issue', `d${i}`, '--owner', 'admin', '--out', join(dir, `${name}-${i}.ovpn`)],
          env,
        );
    }
    const local = { ...envs.get('bundle')!, PODGATE_KUBERNETES_KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '' };
    const localData = { ...local, PODGATE_DATA_DIR: join(dir, 'data-local') };
    timed([BUNDLE, 'init'], localData);
    for (let i = 0; i < rounds + 1; i++)
      timed(
        [BUNDLE, 'cert', 'issue', `d${i}`, '--owner', 'admin', '--out', join(dir, `local-${i}.ovpn`)],
        localData,
      );
    const t = {
      node: [] as number[],
      list: [] as number[],
      localRevoke: [] as number[],
      bundle: [] as number[],
      baseline: [] as number[],
    };
    for (let i = 0; i < rounds + 1; i++) {
      const warm = i === 0; // page cache; not counted
      const push = (xs: number[], ms: number) => !warm && xs.push(ms);
      push(t.node, timed(['-e', '0'], local));
      push(t.list, timed([BUNDLE, 'cert', 'list'], local));
      push(t.localRevoke, timed([BUNDLE, 'cert', 'revoke', `d${i}`], localData));
      for (const [name, cli] of builds)
        push(
          name === 'bundle' ? t.bundle : t.baseline,
          timed([cli, 'cert', 'revoke', `d${i}`], envs.get(name)!),
        );
    }
    const result: ClusterRevokeBenchResult = {
      rounds,
      nodeMs: median(t.node),
      certListMs: median(t.list),
      localRevokeMs: median(t.localRevoke),
      revokeMs: stats(t.bundle),
      ...(t.baseline.length ? { baselineRevokeMs: stats(t.baseline) } : {}),
    };
    print(result);
    return result;
  } finally {
    await cp.stop({ removeDir: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

function print(r: ClusterRevokeBenchResult): void {
  const f = (s: { median: number; worst: number; first: number }) =>
    `median ${s.median.toFixed(0)} ms (${(s.median / r.nodeMs).toFixed(2)}x node -e 0), first ${s.first.toFixed(0)} ms, worst ${s.worst.toFixed(0)} ms`;
  console.log(
    `Cluster-mode revoke, CLI call -> podgate-crl Secret written (real API server), ${r.rounds} rounds`,
  );
  console.log(`node -e 0 (baseline)            ${r.nodeMs.toFixed(0)} ms`);
  console.log(`cert list, local (start-up)     ${r.certListMs.toFixed(0)} ms`);
  console.log(`cert revoke, local mode         ${r.localRevokeMs.toFixed(0)} ms`);
  console.log(`cert revoke, cluster mode       ${f(r.revokeMs)}  [goal <= 300 ms, first included]`);
  if (r.baselineRevokeMs) console.log(`  BENCH_BASELINE_CLI              ${f(r.baselineRevokeMs)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runClusterRevokeBench();
