/**
 * A local Kubernetes control plane from upstream binaries: etcd, kube-apiserver (RBAC + Node authorizers,
 * the default admission plugins including PodSecurity, service-account tokens, service and node-port
 * ranges by flag), kube-controller-manager and kube-scheduler as processes on 127.0.0.1 with free ports;
 * Node objects registered with podCIDRs and InternalIPs, and a kubelet simulator that reports pods bound
 * to them as Running (see kubelet-sim.ts). Used by `npm run test-cluster` and by the mocha helper
 * test/helpers/real-cluster.ts.
 *
 * A real node (kubelet, kube-proxy) plugs in through `ControlPlaneOptions.withNode`.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binaries, requireBinaries, repoRoot, type Binaries } from './binaries.js';
import { restOk, type RestCreds } from './kube-rest.js';
import type { SimNode } from './kubelet-sim.js';
import { makeCa, makeClient, makeServiceAccountKey, makeServing, writeKubeconfig } from './pki.js';
import { ClusterProcess, freePort, isAlive, probe, stopPid } from './process.js';

export interface ControlPlaneOptions {
  /** Holds certificates, etcd data, kubeconfigs, logs and state.json; removed by stop({ removeDir }). */
  dir: string;
  serviceCIDR?: string;
  nodePortRange?: string;
  /** Range the controller-manager allocates node podCIDRs from (for nodes registered without one). */
  clusterCIDR?: string;
  /** Node objects to register (default two, 10.244.0.0/24 and 10.244.1.0/24). */
  nodes?: SimNode[];
  /** Report pods on the registered nodes as Running (default true). */
  simulateKubelet?: boolean;
  /** Processes outlive this Node.js process (the `up` command). */
  detached?: boolean;
  /**
   * A real node: called once the control plane is ready; the processes it returns are stopped with the
   * control plane and listed by `status`. Keeps the node-lifecycle controller on.
   */
  withNode?: (cp: ControlPlane) => Promise<ClusterProcess[]>;
  log?: (line: string) => void;
}

export const DEFAULT_NODES: SimNode[] = [
  { name: 'podgate-node-1', podCIDR: '10.244.0.0/24', internalIP: '172.18.0.2' },
  { name: 'podgate-node-2', podCIDR: '10.244.1.0/24', internalIP: '172.18.0.3' },
];

export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

interface State {
  dir: string;
  server: string;
  kubeconfig: string;
  etcdUrl: string;
  pids: Record<string, number>;
  binaries: Partial<Binaries>;
  serviceCIDR: string;
  nodePortRange: string;
  startedAt: string;
}

export class ControlPlane {
  readonly bin: Binaries;
  readonly serviceCIDR: string;
  readonly nodePortRange: string;
  readonly clusterCIDR: string;
  readonly nodes: SimNode[];
  server = '';
  etcdUrl = '';
  readonly procs = new Map<string, ClusterProcess>();
  private apiPort = 0;
  private readonly log: (line: string) => void;

  constructor(readonly opts: ControlPlaneOptions) {
    this.bin = binaries();
    this.serviceCIDR = opts.serviceCIDR ?? '10.96.0.0/16';
    this.nodePortRange = opts.nodePortRange ?? '30000-32767';
    this.clusterCIDR = opts.clusterCIDR ?? '10.244.0.0/16';
    this.nodes = opts.nodes ?? DEFAULT_NODES;
    this.log = opts.log ?? (() => undefined);
  }

  get dir(): string {
    return this.opts.dir;
  }
  /** The admin kubeconfig (client certificate in system:masters). */
  get kubeconfig(): string {
    return join(this.dir, 'admin.kubeconfig');
  }
  get adminCreds(): RestCreds {
    return {
      server: this.server,
      ca: readFileSync(join(this.dir, 'ca.crt')),
      cert: readFileSync(join(this.dir, 'admin.crt')),
      key: readFileSync(join(this.dir, 'admin.key')),
    };
  }

  async start(): Promise<void> {
    requireBinaries(['etcd', 'kubeApiserver', 'kubeControllerManager', 'kubeScheduler']);
    const started = Date.now();
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    const [etcdPort, peerPort, apiPort, cmPort, schedPort] = await Promise.all(
      Array.from({ length: 5 }, () => freePort()),
    );
    this.apiPort = apiPort;
    this.server = `https://127.0.0.1:${apiPort}`;
    this.etcdUrl = `http://127.0.0.1:${etcdPort}`;
    this.makePki();
    this.log(`certificates ready (${Date.now() - started} ms)`);

    const etcd = this.add('etcd', this.bin.etcd, [
      '--name=default',
      `--data-dir=${join(this.dir, 'etcd')}`,
      `--listen-client-urls=${this.etcdUrl}`,
      `--advertise-client-urls=${this.etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync', // a throwaway test store: durability is not needed, speed is
      '--log-level=warn',
    ], `${this.etcdUrl}/health`); // prettier-ignore
    etcd.start();
    await etcd.waitReady(30_000);
    this.log(`etcd ready on ${this.etcdUrl} (${Date.now() - started} ms)`);

    await this.startApiServer();
    this.log(`kube-apiserver ready on ${this.server} (${Date.now() - started} ms)`);

    const common = (name: string) => [
      `--kubeconfig=${join(this.dir, `${name}.kubeconfig`)}`,
      `--authentication-kubeconfig=${join(this.dir, `${name}.kubeconfig`)}`,
      `--authorization-kubeconfig=${join(this.dir, `${name}.kubeconfig`)}`,
      '--bind-address=127.0.0.1',
      '--leader-elect=false',
      `--cert-dir=${join(this.dir, `${name}-serving`)}`,
    ];
    const controllers = this.opts.withNode
      ? '*'
      : // registered nodes without a kubelet send no heartbeats: the lifecycle controller would taint them
        '*,-node-lifecycle-controller';
    const cm = this.add('kube-controller-manager', this.bin.kubeControllerManager, [
      ...common('controller-manager'),
      `--secure-port=${cmPort}`,
      `--service-account-private-key-file=${join(this.dir, 'sa.key')}`,
      `--root-ca-file=${join(this.dir, 'ca.crt')}`,
      '--use-service-account-credentials=true',
      `--cluster-signing-cert-file=${join(this.dir, 'ca.crt')}`,
      `--cluster-signing-key-file=${join(this.dir, 'ca.key')}`,
      '--allocate-node-cidrs=true',
      `--cluster-cidr=${this.clusterCIDR}`,
      `--service-cluster-ip-range=${this.serviceCIDR}`,
      `--controllers=${controllers}`,
    ], `https://127.0.0.1:${cmPort}/healthz`); // prettier-ignore
    const sched = this.add('kube-scheduler', this.bin.kubeScheduler, [
      ...common('scheduler'),
      `--secure-port=${schedPort}`,
    ], `https://127.0.0.1:${schedPort}/healthz`); // prettier-ignore
    cm.start();
    sched.start();
    await this.registerNodes();
    await Promise.all([cm.waitReady(60_000), sched.waitReady(60_000)]);
    this.log(`controller-manager and scheduler ready (${Date.now() - started} ms)`);

    if ((this.opts.simulateKubelet ?? true) && this.nodes.length > 0) {
      const sim = this.add('kubelet-simulator', process.execPath, [
        join(repoRoot(), 'dist', 'test', 'cluster', 'kubelet-sim.js'),
        this.dir,
        this.server,
        ...this.nodes.map((n) => `${n.name}=${n.podCIDR}=${n.internalIP}`),
      ]);
      sim.start();
    }
    if (this.opts.withNode) {
      for (const p of await this.opts.withNode(this)) this.procs.set(p.spec.name, p);
    }
    this.saveState();
    this.log(`control plane ready in ${Date.now() - started} ms`);
  }

  /**
   * Starts (or restarts, on the same port and data) the API server and waits for /readyz. `extraArgs`
   * are added to its flags for this start only (a test's variant, e.g. a watch cache switched off).
   */
  async startApiServer(extraArgs: string[] = []): Promise<void> {
    const d = (f: string) => join(this.dir, f);
    const api = this.add('kube-apiserver', this.bin.kubeApiserver, [
      `--etcd-servers=${this.etcdUrl}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${this.apiPort}`,
      '--advertise-address=127.0.0.1',
      // the `kubernetes` Service's endpoints would be 127.0.0.1, which Endpoints validation refuses
      '--endpoint-reconciler-type=none',
      `--tls-cert-file=${d('apiserver.crt')}`,
      `--tls-private-key-file=${d('apiserver.key')}`,
      `--client-ca-file=${d('ca.crt')}`,
      '--authorization-mode=Node,RBAC',
      `--service-cluster-ip-range=${this.serviceCIDR}`,
      `--service-node-port-range=${this.nodePortRange}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${d('sa.pub')}`,
      `--service-account-signing-key-file=${d('sa.key')}`,
      `--kubelet-client-certificate=${d('apiserver-kubelet-client.crt')}`,
      `--kubelet-client-key=${d('apiserver-kubelet-client.key')}`,
      '--allow-privileged=true',
      '--profiling=false',
      `--cert-dir=${d('apiserver-serving')}`,
      ...extraArgs,
    ], `${this.server}/readyz`); // prettier-ignore
    api.start();
    await api.waitReady(90_000);
  }

  /** Stops the API server only (etcd and the rest keep running): a fault for tests. */
  async stopApiServer(): Promise<void> {
    await this.procs.get('kube-apiserver')?.stop();
  }

  async stop(opts: { removeDir?: boolean } = {}): Promise<void> {
    const order = [...this.procs.values()].reverse();
    for (const p of order) await p.stop();
    this.procs.clear();
    if (opts.removeDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Logs of every component, for a failing test's report. */
  logTails(lines = 20): string {
    return [...this.procs.values()].map((p) => p.logTail(lines)).join('\n');
  }

  private add(name: string, binary: string, args: string[], readyUrl?: string): ClusterProcess {
    const p = new ClusterProcess({
      name,
      binary,
      args,
      readyUrl,
      logFile: join(this.dir, 'logs', `${name}.log`),
      detached: this.opts.detached,
    });
    this.procs.set(name, p);
    return p;
  }

  private makePki(): void {
    const dir = this.dir;
    makeCa(dir);
    makeServing(dir, 'apiserver', 'kube-apiserver', [
      'IP:127.0.0.1',
      'IP:' + firstServiceIp(this.serviceCIDR),
      'DNS:localhost',
      'DNS:kubernetes',
      'DNS:kubernetes.default',
      'DNS:kubernetes.default.svc',
      'DNS:kubernetes.default.svc.cluster.local',
    ]);
    makeClient(dir, { stem: 'admin', cn: 'podgate-test-admin', org: 'system:masters' });
    makeClient(dir, { stem: 'controller-manager', cn: 'system:kube-controller-manager' });
    makeClient(dir, { stem: 'scheduler', cn: 'system:kube-scheduler' });
    makeClient(dir, {
      stem: 'apiserver-kubelet-client',
      cn: 'kube-apiserver-kubelet-client',
      org: 'system:masters',
    });
    makeServiceAccountKey(dir);
    writeKubeconfig(dir, 'admin.kubeconfig', this.server, 'admin');
    writeKubeconfig(dir, 'controller-manager.kubeconfig', this.server, 'controller-manager');
    writeKubeconfig(dir, 'scheduler.kubeconfig', this.server, 'scheduler');
  }

  private async registerNodes(): Promise<void> {
    const creds = this.adminCreds;
    for (const n of this.nodes) {
      await restOk(creds, 'POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: n.name,
          labels: {
            'kubernetes.io/hostname': n.name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
          },
        },
        spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] },
      });
      const capacity = { cpu: '4', memory: '8Gi', pods: '110', 'ephemeral-storage': '20Gi' };
      await restOk(creds, 'PATCH', `/api/v1/nodes/${n.name}/status`, {
        status: {
          addresses: [
            { type: 'InternalIP', address: n.internalIP },
            { type: 'Hostname', address: n.name },
          ],
          capacity,
          allocatable: capacity,
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'podgate test cluster: kubelet simulator',
              lastHeartbeatTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
              lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
            },
          ],
          nodeInfo: { kubeletVersion: 'v1.34.4', operatingSystem: 'linux', architecture: 'amd64' },
        },
      }, 'application/merge-patch+json'); // prettier-ignore
      // The TaintNodesByCondition admission plugin adds node.kubernetes.io/not-ready at creation; the
      // node-lifecycle controller (off without a kubelet) would lift it once Ready: do that here.
      await restOk(
        creds,
        'PATCH',
        `/api/v1/nodes/${n.name}`,
        { spec: { taints: null } },
        'application/merge-patch+json',
      );
    }
  }

  saveState(): void {
    const state: State = {
      dir: this.dir,
      server: this.server,
      kubeconfig: this.kubeconfig,
      etcdUrl: this.etcdUrl,
      pids: Object.fromEntries([...this.procs].map(([n, p]) => [n, p.pid ?? 0])),
      binaries: this.bin,
      serviceCIDR: this.serviceCIDR,
      nodePortRange: this.nodePortRange,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(join(this.dir, 'state.json'), JSON.stringify(state, null, 2) + '\n');
  }
}

/** The first address of a CIDR + 1: the `kubernetes` Service's ClusterIP. */
export function firstServiceIp(cidr: string): string {
  const parts = cidr.split('/')[0].split('.').map(Number);
  parts[3] += 1;
  return parts.join('.');
}

export function readState(dir: string): State | undefined {
  const file = join(dir, 'state.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as State) : undefined;
}

/** The pid still runs the same program (pids can be reused after a reboot). */
function samePid(pid: number, name: string): boolean {
  if (!pid || !isAlive(pid)) return false;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes(name === 'kubelet-simulator' ? 'kubelet-sim' : name);
  } catch {
    return false;
  }
}

/** Stops what a detached `up` started (found through state.json) and removes the directory. */
export async function downFromState(dir: string): Promise<string[]> {
  const state = readState(dir);
  const stopped: string[] = [];
  if (state) {
    for (const [name, pid] of Object.entries(state.pids).reverse()) {
      if (samePid(pid, name)) {
        await stopPid(pid);
        stopped.push(name);
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return stopped;
}

export async function statusFromState(
  dir: string,
): Promise<{ state?: State; running: Record<string, boolean>; apiReady: boolean }> {
  const state = readState(dir);
  if (!state) return { running: {}, apiReady: false };
  const running = Object.fromEntries(Object.entries(state.pids).map(([n, pid]) => [n, samePid(pid, n)]));
  return { state, running, apiReady: await probe(`${state.server}/readyz`) };
}
