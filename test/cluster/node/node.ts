/**
 * One real Kubernetes node in a network namespace: containerd (own root, state and socket), the kubelet,
 * kube-proxy (iptables mode) and the CNI bridge all run with only their network namespace changed
 * (`nsenter --net`), so they share the machine's mount namespace (secret volumes the kubelet mounts are
 * seen by containerd) while every address, bridge, route and iptables rule of the cluster exists only in
 * the node's namespace.
 *
 *   node namespace `pgk8s-node`: bridge lan0 172.18.12.21/24 (the office LAN attaches here), cni0 + pods,
 *   a relay on 172.18.12.21:<API port> that carries the API server (machine loopback) in through a unix
 *   socket, so pods reach it as the `kubernetes` Service and no interface touches the machine's namespace.
 *
 * `up` returns once the Node is Ready; `down` removes processes, pod cgroups, mounts, namespaces and
 * state, and restores the kernel settings the kubelet changes. Everything `up` made is written to
 * `<runDir>/state.json` first, so `down` works from another process and after a crash.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec } from '../../../src/lib/exec.js';
import {
  containerdConfig,
  cniConfList,
  dirs,
  kubeletConfig,
  kubeProxyConfig,
  type NodeLayout,
} from './configs.js';
import { kubectlBin, say } from './paths.js';

export const NODE_NETNS = 'pgk8s-node';
export const NODE_IP = '172.18.12.21';
export const LAN_CIDR = '172.18.12.0/24';
export const NODE_NAME = 'podgate-test-node';
const CGROUP_ROOT = '/podgate-test-node';
/** Kernel settings the kubelet writes at start (machine-wide, not per namespace): restored by `down`. */
const KUBELET_SYSCTLS = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
];

/**
 * The node's names are fixed (netns, run dir, cgroup parent, 172.18.12.21), so one machine runs one test
 * node at a time. This file says who has it: a test run (its pid; stale once that process is gone) or a
 * `test-cluster up --with-node` session (held until `down`).
 */
export function nodeLockPath(): string {
  return process.env.PODGATE_TEST_NODE_LOCK || '/run/podgate-test-node.lock';
}

interface NodeLock {
  pid: number;
  holder: string;
  /** Held until `down` even after `pid` exits (the `up` command returns while the node runs). */
  untilDown: boolean;
  since: string;
}

function readLock(): NodeLock | undefined {
  try {
    return JSON.parse(readFileSync(nodeLockPath(), 'utf8')) as NodeLock;
  } catch {
    return undefined;
  }
}

/** The holder that keeps another run from the node, or undefined when the node is free (or the lock stale). */
export function nodeHeldBy(): NodeLock | undefined {
  const l = readLock();
  if (!l || l.pid === process.pid) return undefined;
  return l.untilDown || alive(l.pid) ? l : undefined;
}

/**
 * Takes the node for `holder`, or throws naming who has it. A lock left by a run that died is taken over
 * (the caller then runs `nodeDown` to clear what that run left).
 */
export function acquireNodeLock(holder: string, untilDown = false): void {
  const lock: NodeLock = { pid: process.pid, holder, untilDown, since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      // exclusive create: of two runs starting together, exactly one gets the file
      writeFileSync(nodeLockPath(), JSON.stringify(lock), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    const busy = nodeHeldBy();
    if (busy) {
      throw new Error(
        `test node: in use by ${busy.holder} (pid ${busy.pid}, since ${busy.since}); one machine runs one ` +
          `test node (netns ${NODE_NETNS}, ${defaultRunDir()}): wait for it to finish, or run ` +
          `\`npm run test-cluster -- down\` if \`up --with-node\` left it`,
      );
    }
    if (readLock()?.pid === process.pid) return;
    rmSync(nodeLockPath(), { force: true }); // stale: its run is gone; the caller clears what it left
  }
}

/** Gives the node back (only a lock this process holds, or any with `force` from `down`). */
export function releaseNodeLock(force = false): void {
  const l = readLock();
  if (l && (force || l.pid === process.pid)) rmSync(nodeLockPath(), { force: true });
}

export function defaultRunDir(): string {
  return process.env.PODGATE_TEST_NODE_DIR || '/var/lib/podgate-test-node';
}

export interface NodeUpOptions {
  /** Admin kubeconfig of the control plane (server on the machine's loopback). */
  kubeconfig: string;
  /** Paths of the kubelet and kube-proxy binaries (same release as the control plane). */
  kubelet: string;
  kubeProxy: string;
  /** Image archives to import into containerd before the kubelet starts. */
  images: string[];
  sandboxImage: string;
  runDir?: string;
  podCidr?: string;
  clusterCidr?: string;
  clusterDns?: string;
}

interface NodeState {
  runDir: string;
  netns: string;
  pids: Record<string, number>;
  sysctls: Record<string, string>;
  apiPort: number;
}

function statePath(runDir: string): string {
  return join(runDir, 'state.json');
}

function readState(runDir: string): NodeState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(runDir), 'utf8')) as NodeState;
  } catch {
    return undefined;
  }
}

function saveState(s: NodeState): void {
  writeFileSync(statePath(s.runDir), JSON.stringify(s, null, 2));
}

/** Starts `argv` detached with only its network namespace changed; output to `<logs>/<name>.log`. */
function startDaemon(s: NodeState, name: string, argv: string[], inNode = true): number {
  const logs = join(s.runDir, 'logs');
  mkdirSync(logs, { recursive: true });
  const fd = openSync(join(logs, `${name}.log`), 'a');
  const full = inNode ? ['nsenter', `--net=/run/netns/${s.netns}`, '--', ...argv] : argv;
  const child = spawn(full[0]!, full.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  if (!child.pid) throw new Error(`cannot start ${name}`);
  s.pids[name] = child.pid;
  saveState(s);
  return child.pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function logTail(runDir: string, name: string): string {
  try {
    return readFileSync(join(runDir, 'logs', `${name}.log`), 'utf8').slice(-3000);
  } catch {
    return '(no log)';
  }
}

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  onFail: () => string,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`test node: timed out waiting for ${what}\n${onFail()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function inNode(s: { netns: string }, argv: string[]): string[] {
  return ['nsenter', `--net=/run/netns/${s.netns}`, '--', ...argv];
}

/**
 * The admin kubeconfig rewritten to reach the API server through the relay inside the node namespace
 * (same port number); the API server's certificate names the address it has on the machine, so that
 * address becomes the TLS server name.
 */
async function nodeKubeconfig(
  adminKubeconfig: string,
): Promise<{ text: string; apiHost: string; apiPort: number }> {
  const view = await exec([
    kubectlBin(),
    '--kubeconfig',
    adminKubeconfig,
    'config',
    'view',
    '--raw',
    '--minify',
    '--flatten',
    '-o',
    'json',
  ]);
  const cfg = JSON.parse(view.stdout) as { clusters: { cluster: Record<string, string> }[] };
  const cluster = cfg.clusters[0]?.cluster;
  const url = cluster ? new URL(cluster.server!) : undefined;
  if (!cluster || !url || url.protocol !== 'https:')
    throw new Error(`test node: no https server in ${adminKubeconfig}`);
  const apiHost = url.hostname.replace(/^\[|\]$/g, '');
  const apiPort = Number(url.port || 443);
  cluster.server = `https://${NODE_IP}:${apiPort}`;
  cluster['tls-server-name'] = apiHost;
  return { text: JSON.stringify(cfg, null, 2), apiHost, apiPort };
}

async function kubectl(kubeconfig: string, args: string[]): Promise<string> {
  return (await exec([kubectlBin(), '--kubeconfig', kubeconfig, ...args], { timeoutMs: 60_000 })).stdout;
}

/**
 * Pods reach the API server as the `kubernetes` Service (10.96.0.1:443 → kube-proxy → its endpoints).
 * An API server that advertises the node's address keeps those endpoints itself; one that runs with
 * `--endpoint-reconciler-type=none` (its address is loopback) gets them here: the relay on the node.
 */
async function pointKubernetesServiceAtRelay(adminKubeconfig: string, apiPort: number): Promise<void> {
  const current = await exec([
    kubectlBin(),
    '--kubeconfig',
    adminKubeconfig,
    'get',
    'endpointslices',
    '-n',
    'default',
    '-l',
    'kubernetes.io/service-name=kubernetes',
    '-o',
    'json',
  ]);
  const slices = (JSON.parse(current.stdout) as { items: { endpoints?: { addresses: string[] }[] }[] }).items;
  if (slices.some((sl) => (sl.endpoints ?? []).some((e) => e.addresses.includes(NODE_IP)))) return;
  const port = { name: 'https', port: apiPort, protocol: 'TCP' };
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: {
          name: 'kubernetes',
          namespace: 'default',
          labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' },
        },
        subsets: [{ addresses: [{ ip: NODE_IP }], ports: [port] }],
      },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: 'kubernetes',
          namespace: 'default',
          labels: { 'kubernetes.io/service-name': 'kubernetes' },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [NODE_IP], conditions: { ready: true } }],
        ports: [port],
      },
    ],
  };
  await exec([kubectlBin(), '--kubeconfig', adminKubeconfig, 'apply', '-f', '-'], {
    input: JSON.stringify(list),
  });
}

/** Creates the node and returns once the kubelet has registered it Ready. */
export async function nodeUp(o: NodeUpOptions): Promise<{ runDir: string; nodeIp: string; netns: string }> {
  const runDir = o.runDir ?? defaultRunDir();
  if (existsSync(statePath(runDir)) || existsSync(`/run/netns/${NODE_NETNS}`)) {
    throw new Error(`test node: ${runDir} or netns ${NODE_NETNS} exists; run \`down\` first`);
  }
  const layout: NodeLayout = {
    runDir,
    nodeName: NODE_NAME,
    nodeIp: NODE_IP,
    podCidr: o.podCidr ?? '10.244.1.0/24',
    clusterCidr: o.clusterCidr ?? '10.244.0.0/16',
    clusterDns: o.clusterDns ?? '10.96.0.10',
    clusterDomain: 'cluster.local',
    sandboxImage: o.sandboxImage,
    cgroupRoot: CGROUP_ROOT,
  };
  const d = dirs(layout);
  for (const dir of [
    d.containerdRoot,
    d.containerdState,
    d.cniConf,
    d.cniIpam,
    d.kubeletRoot,
    d.kubeletCerts,
    d.logs,
  ])
    mkdirSync(dir, { recursive: true });
  const sysctls: Record<string, string> = {};
  for (const k of KUBELET_SYSCTLS) sysctls[k] = (await exec(['sysctl', '-n', k])).stdout.trim();
  const admin = await nodeKubeconfig(o.kubeconfig);
  const s: NodeState = { runDir, netns: NODE_NETNS, pids: {}, sysctls, apiPort: admin.apiPort };
  saveState(s);

  // network: the namespace, its LAN bridge with the node address, forwarding, bridged traffic through iptables
  await exec(['ip', 'netns', 'add', NODE_NETNS]);
  const ns = ['ip', '-n', NODE_NETNS];
  await exec([...ns, 'link', 'set', 'lo', 'up']);
  await exec([...ns, 'link', 'add', 'lan0', 'type', 'bridge']);
  await exec([...ns, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'lan0']);
  await exec([...ns, 'link', 'set', 'lan0', 'up']);
  // A real node has a default route. Without one, the node's own connections to a ClusterIP (a probe, the
  // test reaching a Service from the node) fail at the route lookup, which comes before kube-proxy's DNAT.
  // lan0 joins only namespaces the tests create, so nothing leaves through it to the machine.
  await exec([...ns, 'route', 'add', 'default', 'dev', 'lan0']);
  for (const kv of [
    'net.ipv4.ip_forward=1',
    'net.bridge.bridge-nf-call-iptables=1',
    'net.ipv4.conf.all.route_localnet=1',
  ]) {
    await exec(inNode(s, ['sysctl', '-q', '-w', kv]));
  }
  writeFileSync(d.resolvConf, `nameserver ${NODE_IP}\n`);

  // the API server inside the node namespace, at the same port number as on the machine's loopback
  const relay = fileURLToPath(new URL('./relay.js', import.meta.url));
  const sock = join(runDir, 'apiserver.sock');
  startDaemon(
    s,
    'relay-host',
    [process.execPath, relay, 'unix-to-tcp', sock, admin.apiHost, String(admin.apiPort)],
    false,
  );
  startDaemon(s, 'relay-node', [
    process.execPath,
    relay,
    'tcp-to-unix',
    NODE_IP,
    String(admin.apiPort),
    sock,
  ]);
  const kc = join(runDir, 'node.kubeconfig');
  writeFileSync(kc, admin.text, { mode: 0o600 });
  await waitUntil(
    'the API server through the relay',
    async () =>
      (await exec(inNode(s, [kubectlBin(), '--kubeconfig', kc, 'get', '--raw', '/readyz']), { check: false }))
        .code === 0,
    20_000,
    () => logTail(runDir, 'relay-node') + logTail(runDir, 'relay-host'),
  );

  await pointKubernetesServiceAtRelay(o.kubeconfig, admin.apiPort);

  // containerd, then the images (no registry: imported from archives built here)
  writeFileSync(join(runDir, 'containerd.toml'), containerdConfig(layout));
  startDaemon(s, 'containerd', [
    'containerd',
    '--config',
    join(runDir, 'containerd.toml'),
    '--log-level',
    'warn',
  ]);
  const ctr = ['ctr', '--address', d.containerdSock, '--namespace', 'k8s.io'];
  await waitUntil(
    'containerd',
    async () => (await exec([...ctr, 'version'], { check: false })).code === 0,
    20_000,
    () => logTail(runDir, 'containerd'),
  );
  for (const archive of o.images) {
    say(`importing ${archive}`);
    await exec(['nice', '-n', '10', ...ctr, 'images', 'import', '--no-unpack', archive], {
      timeoutMs: 10 * 60_000,
    });
  }

  // the kubelet's cgroup parent must exist in every hierarchy; cpuset children start empty in v1
  for (const c of readdirSync('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', c, CGROUP_ROOT.slice(1));
    mkdirSync(dir, { recursive: true });
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(dir, f))) writeFileSync(join(dir, f), readFileSync(join('/sys/fs/cgroup', c, f)));
    }
  }

  // the kubelet: registers the node; the pod network follows from the podCIDR the Node gets
  const kubeletCfg = join(runDir, 'kubelet.json');
  writeFileSync(kubeletCfg, kubeletConfig(layout));
  startDaemon(s, 'kubelet', [
    o.kubelet,
    `--config=${kubeletCfg}`,
    `--kubeconfig=${kc}`,
    `--root-dir=${d.kubeletRoot}`,
    `--cert-dir=${d.kubeletCerts}`,
    `--hostname-override=${NODE_NAME}`,
    `--node-ip=${NODE_IP}`,
    '--v=1',
  ]);
  const adminKc = o.kubeconfig;
  await waitUntil(
    'the kubelet to register the node',
    async () =>
      (await exec([kubectlBin(), '--kubeconfig', adminKc, 'get', 'node', NODE_NAME], { check: false }))
        .code === 0,
    60_000,
    () => logTail(runDir, 'kubelet'),
  );
  let podCidr = (await kubectl(adminKc, ['get', 'node', NODE_NAME, '-o', 'jsonpath={.spec.podCIDR}'])).trim();
  if (!podCidr) {
    // no controller-manager CIDR allocation in this control plane: give the node its range (settable once)
    await kubectl(adminKc, [
      'patch',
      'node',
      NODE_NAME,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { podCIDR: layout.podCidr, podCIDRs: [layout.podCidr] } }),
    ]);
    podCidr = layout.podCidr;
  }
  writeFileSync(join(d.cniConf, '10-podgate-test.conflist'), cniConfList({ ...layout, podCidr }));

  const proxyCfg = join(runDir, 'kube-proxy.json');
  writeFileSync(proxyCfg, kubeProxyConfig(layout, kc));
  startDaemon(s, 'kube-proxy', [o.kubeProxy, `--config=${proxyCfg}`, '--v=1']);

  await waitUntil(
    'the node to become Ready',
    async () =>
      (
        await kubectl(adminKc, [
          'get',
          'node',
          NODE_NAME,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ])
      ).trim() === 'True',
    120_000,
    () => logTail(runDir, 'kubelet'),
  );
  for (const [name, pid] of Object.entries(s.pids)) {
    if (!alive(pid)) throw new Error(`test node: ${name} exited\n${logTail(runDir, name)}`);
  }
  return { runDir, nodeIp: NODE_IP, netns: NODE_NETNS };
}

/** Attaches a namespace to the node's LAN: a veth from `ns` (`ifname`, `cidr`) into the node's lan0 bridge. */
export async function attachToLan(ns: string, ifname: string, cidr: string, nodeSide: string): Promise<void> {
  await exec([
    'ip',
    '-n',
    ns,
    'link',
    'add',
    ifname,
    'type',
    'veth',
    'peer',
    'name',
    nodeSide,
    'netns',
    NODE_NETNS,
  ]);
  await exec(['ip', '-n', NODE_NETNS, 'link', 'set', nodeSide, 'master', 'lan0', 'up']);
  await exec(['ip', '-n', ns, 'addr', 'add', cidr, 'dev', ifname]);
  await exec(['ip', '-n', ns, 'link', 'set', ifname, 'up']);
}

async function killPid(pid: number, graceMs: number): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Every cgroup dir of the node's pods, deepest first, in every v1 controller and the unified tree. */
function podCgroups(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e);
      try {
        if (statSync(p).isDirectory()) walk(p);
      } catch {
        /* raced */
      }
    }
    out.push(dir);
  };
  let controllers: string[] = [];
  try {
    controllers = readdirSync('/sys/fs/cgroup');
  } catch {
    return out;
  }
  for (const c of controllers) walk(join('/sys/fs/cgroup', c, CGROUP_ROOT.slice(1)));
  return out.filter((p) => existsSync(p));
}

function killCgroupProcs(): number {
  let n = 0;
  for (const cg of podCgroups()) {
    let procs = '';
    try {
      procs = readFileSync(join(cg, 'cgroup.procs'), 'utf8');
    } catch {
      continue;
    }
    for (const line of procs.split('\n')) {
      const pid = Number(line);
      if (pid > 1) {
        try {
          process.kill(pid, 'SIGKILL');
          n++;
        } catch {
          /* gone */
        }
      }
    }
  }
  return n;
}

/** Mount points under `dir`, deepest first (kubelet volumes, overlay snapshots, pod netns and shm). */
function mountsUnder(dir: string): string[] {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const points = lines
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Removes everything `nodeUp` made. Never throws; returns what it could not remove. */
export async function nodeDown(runDir = defaultRunDir()): Promise<string[]> {
  const problems: string[] = [];
  const s = readState(runDir);
  const pids = s?.pids ?? {};
  // the kubelet first (it would restart pods), then the pods' containers, then containerd and the rest
  for (const name of ['kubelet', 'kube-proxy']) if (pids[name]) await killPid(pids[name], 5000);
  const sock = dirs({ runDir } as NodeLayout).containerdSock;
  if (pids.containerd && alive(pids.containerd)) {
    const ctr = ['ctr', '--address', sock, '--namespace', 'k8s.io'];
    const tasks = await exec([...ctr, 'tasks', 'ls', '-q'], { check: false, timeoutMs: 10_000 }).catch(
      () => undefined,
    );
    for (const id of (tasks?.stdout ?? '').split('\n').filter(Boolean)) {
      await exec([...ctr, 'tasks', 'kill', '-s', 'SIGKILL', id], { check: false, timeoutMs: 10_000 }).catch(
        () => undefined,
      );
    }
  }
  killCgroupProcs();
  await new Promise((r) => setTimeout(r, 500));
  for (const [name, pid] of Object.entries(pids))
    if (name !== 'kubelet' && name !== 'kube-proxy') await killPid(pid, 5000);
  // shims and anything else still inside the node namespace
  if (existsSync(`/run/netns/${NODE_NETNS}`)) {
    const r = await exec(['ip', 'netns', 'pids', NODE_NETNS], { check: false }).catch(() => undefined);
    for (const pid of (r?.stdout ?? '')
      .split('\n')
      .map(Number)
      .filter((p) => p > 1)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  killCgroupProcs();
  await new Promise((r) => setTimeout(r, 300));
  for (const p of mountsUnder(runDir)) {
    const r = await exec(['umount', p], { check: false });
    if (r.code !== 0) {
      const lazy = await exec(['umount', '-l', p], { check: false });
      if (lazy.code !== 0) problems.push(`mount ${p}: ${lazy.stderr.trim()}`);
    }
  }
  for (const cg of podCgroups()) {
    try {
      rmdirSync(cg);
    } catch (err) {
      problems.push(`cgroup ${cg}: ${(err as Error).message}`);
    }
  }
  if (existsSync(`/run/netns/${NODE_NETNS}`)) {
    const r = await exec(['ip', 'netns', 'del', NODE_NETNS], { check: false });
    if (r.code !== 0) problems.push(`netns ${NODE_NETNS}: ${r.stderr.trim()}`);
  }
  for (const [k, v] of Object.entries(s?.sysctls ?? {})) {
    await exec(['sysctl', '-q', '-w', `${k}=${v}`], { check: false });
  }
  if (existsSync(runDir)) {
    const r = await exec(['rm', '-rf', runDir], { check: false });
    if (r.code !== 0) problems.push(`${runDir}: ${r.stderr.trim()}`);
  }
  return problems;
}

/** What runs, for `status`. */
export function nodeStatus(runDir = defaultRunDir()): { up: boolean; processes: Record<string, boolean> } {
  const s = readState(runDir);
  const processes: Record<string, boolean> = {};
  for (const [name, pid] of Object.entries(s?.pids ?? {})) processes[name] = alive(pid);
  return { up: Boolean(s), processes };
}

/**
 * What a node would leave on the machine, checked after `down`: the namespace, the run dir, mounts under
 * it, pod cgroups, processes still running from it, a lock this process holds, and any kube-proxy chain in
 * the machine's own iptables (the node's rules must only ever exist inside its namespace). Empty when clean.
 */
export async function nodeLeftovers(runDir = defaultRunDir()): Promise<string[]> {
  const left: string[] = [];
  if (existsSync(`/run/netns/${NODE_NETNS}`)) left.push(`netns ${NODE_NETNS}`);
  if (existsSync(runDir)) left.push(`dir ${runDir}`);
  for (const m of mountsUnder(runDir)) left.push(`mount ${m}`);
  for (const cg of podCgroups()) left.push(`cgroup ${cg}`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (cmd.includes(runDir) && Number(pid) !== process.pid)
      left.push(`process ${pid}: ${cmd.slice(0, 120)}`);
  }
  for (const table of ['filter', 'nat', 'mangle']) {
    const r = await exec(['iptables', '-w', '-t', table, '-S'], { check: false }).catch(() => undefined);
    for (const line of (r?.stdout ?? '').split('\n'))
      if (/KUBE-|CNI-/.test(line)) left.push(`machine iptables (${table}): ${line}`);
  }
  if (readLock()?.pid === process.pid) left.push(`lock ${nodeLockPath()}`);
  return left;
}
