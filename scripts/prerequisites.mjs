#!/usr/bin/env node
// First step of `npm test`: the suites run real openvpn, openssl, sshd, iptables and chromium.
// As root, missing Debian packages are installed with apt-get; otherwise they are listed and the run stops.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const NEEDS = [
  { pkg: 'openvpn', path: '/usr/sbin/openvpn' },
  { pkg: 'openssl', path: '/usr/bin/openssl' },
  { pkg: 'iproute2', path: '/usr/sbin/ip', alt: '/sbin/ip' },
  { pkg: 'iptables', path: '/usr/sbin/iptables', alt: '/sbin/iptables' },
  // access rules: server run keeps an nftables table
  { pkg: 'nftables', path: '/usr/sbin/nft', alt: '/sbin/nft' },
  { pkg: 'openssh-server', path: '/usr/sbin/sshd' },
  { pkg: 'openssh-client', path: '/usr/bin/ssh-keygen' },
  { pkg: 'easy-rsa', path: '/usr/share/easy-rsa/easyrsa' },
  { pkg: 'chromium', path: '/usr/bin/chromium' },
  { pkg: 'procps', path: '/usr/bin/pgrep', alt: '/bin/pgrep' },
  // the real-node e2e: containerd + runc + CNI plugins run the node; buildah/debootstrap build the images
  // offline; gcc + libc6-dev compile the pod sandbox (pause); busybox-static is the workload image;
  // conntrack lets kube-proxy flush UDP entries; iperf3 measures the tunnel
  { pkg: 'containerd', path: '/usr/bin/containerd' },
  { pkg: 'runc', path: '/usr/sbin/runc' },
  { pkg: 'containernetworking-plugins', path: '/usr/lib/cni/bridge' },
  { pkg: 'buildah', path: '/usr/bin/buildah' },
  { pkg: 'debootstrap', path: '/usr/sbin/debootstrap' },
  { pkg: 'conntrack', path: '/usr/sbin/conntrack' },
  { pkg: 'busybox-static', path: '/bin/busybox' },
  { pkg: 'iperf3', path: '/usr/bin/iperf3' },
  { pkg: 'gcc', path: '/usr/bin/gcc' },
  { pkg: 'libc6-dev', path: '/usr/lib/x86_64-linux-gnu/libc.a' },
  // the PostgreSQL store suites start their own server (initdb + pg_ctl in a temporary directory)
  { pkg: 'postgresql', path: postgresBin() ?? '/usr/lib/postgresql/15/bin/pg_ctl' },
  // promtool checks and unit-tests docs/prometheus/podgate-rules.yaml (only promtool is used)
  { pkg: 'prometheus', path: '/usr/bin/promtool' },
];

/** pg_ctl of the newest PostgreSQL under /usr/lib/postgresql (Debian keeps one directory per major). */
function postgresBin() {
  if (!existsSync('/usr/lib/postgresql')) return undefined;
  const majors = readdirSync('/usr/lib/postgresql')
    .filter((d) => /^\d+$/.test(d))
    .sort((a, b) => Number(b) - Number(a));
  return majors.map((m) => `/usr/lib/postgresql/${m}/bin/pg_ctl`).find((p) => existsSync(p));
}

const missing = NEEDS.filter((n) => !existsSync(n.path) && !(n.alt && existsSync(n.alt))).map((n) => n.pkg);
const isRoot = process.getuid?.() === 0;

if (missing.length > 0) {
  if (!isRoot) {
    console.error(`podgate tests need these Debian packages: ${missing.join(' ')}`);
    console.error(`install them as root: apt-get update && apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
  console.log(`installing missing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const argv of [
    ['apt-get', 'update'],
    ['apt-get', 'install', '-y', '--no-install-recommends', ...missing],
  ]) {
    const r = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit', env });
    if (r.status !== 0) {
      console.error(`${argv.join(' ')} failed (exit ${r.status})`);
      process.exit(1);
    }
  }
}

// openvpn needs the tun device; containers sometimes lack the node.
if (isRoot && !existsSync('/dev/net/tun')) {
  mkdirSync('/dev/net', { recursive: true });
  spawnSync('mknod', ['/dev/net/tun', 'c', '10', '200'], { stdio: 'inherit' });
  spawnSync('chmod', ['0666', '/dev/net/tun'], { stdio: 'inherit' });
}

if (!isRoot) {
  const msg = 'the e2e suites (network namespaces, openvpn, sshd) must run as root';
  if (process.env.CI === 'true') {
    console.error(`${msg}; CI requires them`);
    process.exit(1);
  }
  console.warn(`warning: ${msg}; they will fail`);
}
// The cluster suites run a real control plane built from upstream Kubernetes (v1.34) and etcd with Go;
// the first build takes many minutes and is cached outside the work tree (scripts/build-test-cluster.mjs).
// helm (helm.sh/helm/v4, the chart tests) is built from its Go module the same way and cached beside them.
// The real-node e2e is part of `npm test`, so kubelet and kube-proxy are built too (`--with-node`; the
// node's images and CoreDNS are built by the suite itself, cached by content hash);
// `--no-cluster` (npm run test:unit: pure tests, no Kubernetes binary) skips the build altogether.
if (!process.argv.includes('--no-cluster')) {
  const buildArgs = [new URL('./build-test-cluster.mjs', import.meta.url).pathname, '--with-node'];
  const build = spawnSync(process.execPath, buildArgs, { stdio: 'inherit' });
  if (build.status !== 0) {
    console.error('building the test cluster failed: the cluster suites cannot run');
    process.exit(1);
  }
}
console.log('prerequisites ok');
