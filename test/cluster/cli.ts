/**
 * `npm run test-cluster -- up | down | status`: a local Kubernetes control plane (see control-plane.ts)
 * that keeps running after the command, for trying podgate by hand.
 *
 *   up [--with-node]   build the binaries if needed, start, print `export KUBECONFIG=...`
 *   down               stop every process and remove every file
 *   status             what runs
 *
 * State lives in $PODGATE_TEST_CLUSTER_DIR (default /tmp/podgate-test-cluster).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './binaries.js';
import {
  ControlPlane,
  downFromState,
  readState,
  statusFromState,
  type ControlPlaneOptions,
} from './control-plane.js';
import type { ClusterProcess } from './process.js';

const DIR = process.env.PODGATE_TEST_CLUSTER_DIR || '/tmp/podgate-test-cluster';

async function up(withNode: boolean): Promise<number> {
  if (readState(DIR)) {
    const st = await statusFromState(DIR);
    if (st.apiReady) {
      console.log(`already running (${st.state?.server}); \`npm run test-cluster -- down\` first to restart`);
      console.log(`export KUBECONFIG=${st.state?.kubeconfig}`);
      return 0;
    }
    await downFromState(DIR);
  }
  const buildArgs = [
    join(repoRoot(), 'scripts', 'build-test-cluster.mjs'),
    ...(withNode ? ['--with-node'] : []),
  ];
  const build = spawnSync(process.execPath, buildArgs, { stdio: 'inherit' });
  if (build.status !== 0) return 1;
  const opts: ControlPlaneOptions = { dir: DIR, detached: true, log: (l) => console.log(`  ${l}`) };
  if (withNode) {
    // The real node (kubelet + kube-proxy + containerd) lives in test/cluster/node.ts, which exports
    // `startNode(cp: ControlPlane): Promise<ClusterProcess[]>`. Resolved at run time so this file builds without it.
    const nodeModule = './node.js';
    if (!existsSync(join(repoRoot(), 'dist', 'test', 'cluster', 'node.js'))) {
      console.error('--with-node: test/cluster/node.ts is not part of this tree yet');
      return 2;
    }
    const { startNode } = (await import(nodeModule)) as {
      startNode: (cp: ControlPlane) => Promise<ClusterProcess[]>;
    };
    opts.withNode = startNode;
    opts.nodes = [];
    opts.simulateKubelet = false;
  }
  const cp = new ControlPlane(opts);
  try {
    await cp.start();
  } catch (err) {
    console.error(`test cluster failed to start: ${(err as Error).message}`);
    await cp.stop({ removeDir: false });
    console.error(`logs kept in ${join(DIR, 'logs')}; \`npm run test-cluster -- down\` removes them`);
    return 1;
  }
  console.log(`Kubernetes ${cp.server} is up; logs in ${join(DIR, 'logs')}`);
  console.log(`export KUBECONFIG=${cp.kubeconfig}`);
  console.log(`kubectl: ${cp.bin.kubectl}`);
  return 0;
}

async function status(): Promise<number> {
  const st = await statusFromState(DIR);
  if (!st.state) {
    console.log('not running');
    return 3;
  }
  console.log(
    `server ${st.state.server} (${st.apiReady ? 'ready' : 'NOT ready'}), kubeconfig ${st.state.kubeconfig}`,
  );
  for (const [name, up] of Object.entries(st.running)) {
    console.log(`  ${name.padEnd(24)} ${up ? `running (pid ${st.state.pids[name]})` : 'stopped'}`);
  }
  return st.apiReady ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  switch (argv[0]) {
    case 'up':
      return up(argv.includes('--with-node'));
    case 'down': {
      // [k8s-node hook] a real node from `up --with-node` keeps its own state: remove it before the control plane
      if (existsSync(join(repoRoot(), 'dist', 'test', 'cluster', 'node.js'))) {
        const nodeModule = './node.js';
        const { stopNode } = (await import(nodeModule)) as { stopNode: () => Promise<string[]> };
        for (const p of await stopNode()) console.error(`node: not removed: ${p}`);
      }
      const stopped = await downFromState(DIR);
      console.log(
        stopped.length ? `stopped ${stopped.join(', ')}; removed ${DIR}` : `nothing running; removed ${DIR}`,
      );
      return 0;
    }
    case 'status':
      return status();
    default:
      console.error('usage: npm run test-cluster -- up [--with-node] | down | status');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
