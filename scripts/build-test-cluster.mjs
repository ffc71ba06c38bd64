#!/usr/bin/env node
// Builds the test cluster's binaries from upstream sources with `go build` through the Go module proxy:
// kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet and kube-proxy from
// k8s.io/kubernetes (module test/cluster/k8s), etcd at the version that release pins (test/cluster/etcd),
// and helm from helm.sh/helm/v4 (test/cluster/helm: the chart's lint, template and install tests).
//
// Binaries are cached outside the work tree, keyed by version:
//   ${PODGATE_TEST_CLUSTER_CACHE:-/var/cache/podgate-test-cluster}/k8s-<version>/bin/<name>       control plane + kubectl
//   ${PODGATE_TEST_CLUSTER_CACHE:-/var/cache/podgate-test-cluster}/k8s-<version>/node-bin/<name>  kubelet, kube-proxy
//   ${PODGATE_TEST_CLUSTER_CACHE:-/var/cache/podgate-test-cluster}/etcd-<version>/bin/etcd
//   ${PODGATE_TEST_CLUSTER_CACHE:-/var/cache/podgate-test-cluster}/helm-<version>/bin/helm
// A complete cache makes this a no-op; a partial one (an interrupted build) is rebuilt. Any failure exits 1
// with the step that failed, so a CI run stops here instead of skipping the cluster suites.
//
// The node binaries are built only with --with-node. scripts/prerequisites.mjs passes it for `npm test`,
// whose real-node e2e (test/e2e/k8s-node.test.ts) runs a kubelet and kube-proxy; without it this builds
// the control plane alone (enough for `npm run test-cluster -- up` without a node).
//
// Usage: node scripts/build-test-cluster.mjs [--with-node] [--print-paths]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLUSTER_DIR = join(ROOT, 'test', 'cluster');
export const VERSIONS = JSON.parse(readFileSync(join(CLUSTER_DIR, 'versions.json'), 'utf8'));
const COMPLETE = '.complete';

// Debian's golang-go (1.19) is too old for these modules; the machines' Go lives in /usr/local/go.
if (
  !process.env.PATH?.split(':').some((d) => existsSync(join(d, 'go'))) &&
  existsSync('/usr/local/go/bin/go')
) {
  process.env.PATH = `${process.env.PATH}:/usr/local/go/bin`;
}

export function cacheRoot() {
  return process.env.PODGATE_TEST_CLUSTER_CACHE || '/var/cache/podgate-test-cluster';
}

/** Where each binary lives once built (whether or not it exists yet). */
export function binaryPaths() {
  const k8sBin = join(cacheRoot(), `k8s-${VERSIONS.kubernetes}`, 'bin');
  const k8sNodeBin = join(cacheRoot(), `k8s-${VERSIONS.kubernetes}`, 'node-bin');
  const etcdBin = join(cacheRoot(), `etcd-${VERSIONS.etcd}`, 'bin');
  const helmBin = join(cacheRoot(), `helm-${VERSIONS.helm}`, 'bin');
  const paths = {
    k8sBin,
    k8sNodeBin,
    etcdBin,
    etcd: join(etcdBin, 'etcd'),
    helmBin,
    helm: join(helmBin, 'helm'),
  };
  for (const name of VERSIONS.controlPlane) paths[name] = join(k8sBin, name);
  for (const name of VERSIONS.node) paths[name] = join(k8sNodeBin, name);
  return paths;
}

function isComplete(binDir, names) {
  return existsSync(join(binDir, COMPLETE)) && names.every((n) => existsSync(join(binDir, n)));
}

function versionLdflags(version) {
  const [major, minor] = version.replace(/^v/, '').split('.');
  const flags = ['-s', '-w'];
  // what `kubectl version` and the API server's /version report (upstream sets these through hack/lib/version.sh)
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    flags.push(
      `-X ${pkg}.gitVersion=${version}`,
      `-X ${pkg}.gitMajor=${major}`,
      `-X ${pkg}.gitMinor=${minor}`,
      `-X ${pkg}.gitTreeState=clean`,
    );
  }
  return flags.join(' ');
}

function log(msg) {
  console.log(`[test-cluster build] ${msg}`);
}

/** Runs a Go command at low priority, printing a progress line every 20 s; rejects on a non-zero exit. */
function runGo(args, cwd, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' };
    const child = spawn('nice', ['-n', '15', 'go', ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let lines = 0;
    let tail = '';
    const onData = (chunk) => {
      const text = chunk.toString();
      lines += text.split('\n').length - 1;
      tail = (tail + text).slice(-8000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setInterval(() => {
      log(`${what}: ${Math.round((Date.now() - started) / 1000)} s, ${lines} packages/modules so far`);
    }, 20_000);
    child.on('error', (err) => {
      clearInterval(timer);
      reject(new Error(`${what}: cannot run go (${err.message}); install Go 1.26 or later`));
    });
    child.on('close', (code) => {
      clearInterval(timer);
      const secs = Math.round((Date.now() - started) / 1000);
      if (code === 0) {
        log(`${what}: done in ${secs} s`);
        resolve(secs);
      } else {
        process.stderr.write(tail);
        reject(new Error(`${what}: go ${args[0]} exited ${code} after ${secs} s (output above)`));
      }
    });
  });
}

async function buildInto(binDir, names, moduleDir, packages, ldflags, label) {
  if (isComplete(binDir, names)) return false;
  const tmp = `${binDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await runGo(['mod', 'download', '-x'], moduleDir, `${label}: module download`);
    await runGo(
      ['build', '-v', '-trimpath', `-ldflags=${ldflags}`, '-o', `${tmp}/`, ...packages],
      moduleDir,
      `${label}: compile ${names.join(', ')}`,
    );
    for (const n of names) {
      if (!existsSync(join(tmp, n))) throw new Error(`${label}: go build produced no ${n}`);
    }
    writeFileSync(join(tmp, COMPLETE), `${new Date().toISOString()}\n`);
    rmSync(binDir, { recursive: true, force: true });
    renameSync(tmp, binDir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return true;
}

/** Builds whatever is missing from the cache. Resolves to the binary paths. */
export async function buildTestCluster({ withNode = false } = {}) {
  const paths = binaryPaths();
  const k8sNames = VERSIONS.controlPlane;
  if (
    isComplete(paths.etcdBin, ['etcd']) &&
    isComplete(paths.k8sBin, k8sNames) &&
    isComplete(paths.helmBin, ['helm']) &&
    (!withNode || isComplete(paths.k8sNodeBin, VERSIONS.node))
  ) {
    return paths;
  }
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.status !== 0) {
    throw new Error(
      'the test cluster is built from source with Go, and `go` is not on PATH: install Go 1.26 or later',
    );
  }
  log(
    `building Kubernetes ${VERSIONS.kubernetes}, etcd ${VERSIONS.etcd} and helm ${VERSIONS.helm} with ${go.stdout.trim()}`,
  );
  log(
    `cache: ${cacheRoot()} (set PODGATE_TEST_CLUSTER_CACHE to move it); the first build takes many minutes`,
  );
  const started = Date.now();
  await buildInto(
    paths.etcdBin,
    ['etcd'],
    join(CLUSTER_DIR, 'etcd'),
    ['.'],
    '-s -w',
    `etcd ${VERSIONS.etcd}`,
  ).then((built) => {
    // `go build -o dir/ .` names the binary after the module's last path element
    if (built) log(`etcd ready in ${paths.etcdBin}`);
  });
  const built = await buildInto(
    paths.k8sBin,
    k8sNames,
    join(CLUSTER_DIR, 'k8s'),
    k8sNames.map((n) => `k8s.io/kubernetes/cmd/${n}`),
    versionLdflags(VERSIONS.kubernetes),
    `kubernetes ${VERSIONS.kubernetes}`,
  );
  if (built) log(`kubernetes binaries ready in ${paths.k8sBin}`);
  // helm is a `tool` of its module (go.mod pins helm.sh/helm/v4); the -X sets what `helm version` prints
  const helmBuilt = await buildInto(
    paths.helmBin,
    ['helm'],
    join(CLUSTER_DIR, 'helm'),
    ['helm.sh/helm/v4/cmd/helm'],
    `-s -w -X helm.sh/helm/v4/internal/version.version=${VERSIONS.helm} -X helm.sh/helm/v4/internal/version.gitTreeState=clean`,
    `helm ${VERSIONS.helm}`,
  );
  if (helmBuilt) log(`helm ready in ${paths.helmBin}`);
  if (withNode) {
    const nodeBuilt = await buildInto(
      paths.k8sNodeBin,
      VERSIONS.node,
      join(CLUSTER_DIR, 'k8s'),
      VERSIONS.node.map((n) => `k8s.io/kubernetes/cmd/${n}`),
      versionLdflags(VERSIONS.kubernetes),
      `kubernetes ${VERSIONS.kubernetes} node`,
    );
    if (nodeBuilt) log(`node binaries ready in ${paths.k8sNodeBin}`);
  }
  log(`total ${Math.round((Date.now() - started) / 1000)} s`);
  return paths;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildTestCluster({ withNode: process.argv.includes('--with-node') }).then(
    (paths) => {
      if (process.argv.includes('--print-paths')) console.log(JSON.stringify(paths, null, 2));
    },
    (err) => {
      console.error(`[test-cluster build] FAILED: ${err.message}`);
      process.exit(1);
    },
  );
}
