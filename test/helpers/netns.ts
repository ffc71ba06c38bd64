/**
 * Network namespaces for tests (root only). Everything a test creates here is tracked and removed by
 * `cleanupAll()` (call it from `after`), by process group, by pid found in the namespace, and by name.
 *
 * Rules this helper enforces, so a test never touches the machine's own network: every namespace has
 * a unique name (prefix + random suffix), interfaces are created directly inside namespaces (never in
 * the machine's own one), and no route or address is ever added to the machine's own namespace.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { exec, type ExecOptions, type ExecResult } from '../../src/lib/exec.js';

// Reachability probes (TCP echo, DNS) live in ./net-probes.ts; re-exported so one import serves a test.
export { startEchoServer, tcpProbe, tcpConnects, startDnsServer, dnsQuery } from './net-probes.js';

const namespaces = new Set<string>();
const processes = new Set<SpawnedProcess>();

/** True when this process can create namespaces (root + `ip` present). */
export async function canUseNetns(): Promise<boolean> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  const r = await exec(['ip', 'netns', 'list'], { check: false }).catch(() => undefined);
  return r?.code === 0;
}

/** A name unique to this run: `<prefix>-<8 hex>`; prefix is cut so the result fits a netns/iface name. */
export function uniqueName(prefix: string): string {
  return `${prefix.slice(0, 10)}-${randomBytes(4).toString('hex')}`;
}

/** Creates a namespace with a unique name, brings its loopback up, and tracks it for cleanup. */
export async function createNamespace(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  await exec(['ip', 'netns', 'add', name]);
  namespaces.add(name);
  await exec(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Kills every process still inside the namespace (SIGKILL) and deletes it. Never throws. */
export async function destroyNamespace(name: string): Promise<void> {
  const pids = await exec(['ip', 'netns', 'pids', name], { check: false }).catch(() => undefined);
  for (const line of (pids?.stdout ?? '').split('\n')) {
    const pid = Number(line.trim());
    if (pid > 1) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  await exec(['ip', 'netns', 'del', name], { check: false }).catch(() => undefined);
  namespaces.delete(name);
}

/**
 * Creates a veth pair with one end in each namespace, both up. Names must not be `ip` keywords
 * (`ad` reads as `address`): use e.g. `vo1`/`vn1`. Because both ends are created inside namespaces,
 * the names only need to be unique within them.
 */
export async function addVeth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  await exec(['ip', '-n', nsA, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
  await exec(['ip', '-n', nsA, 'link', 'set', ifA, 'up']);
  await exec(['ip', '-n', nsB, 'link', 'set', ifB, 'up']);
}

/** Adds `cidr` (e.g. "172.18.12.21/24") to an interface inside the namespace. */
export async function addAddress(ns: string, ifname: string, cidr: string): Promise<void> {
  await exec(['ip', '-n', ns, 'addr', 'add', cidr, 'dev', ifname]);
}

/** Adds a route inside the namespace: `dest` ("10.244.0.0/16" or "default") via a gateway or out a device. */
export async function addRoute(
  ns: string,
  dest: string,
  via: { gateway?: string; dev?: string },
): Promise<void> {
  const argv = ['ip', '-n', ns, 'route', 'add', dest];
  if (via.gateway) argv.push('via', via.gateway);
  if (via.dev) argv.push('dev', via.dev);
  await exec(argv);
}

/** Turns IPv4 forwarding on or off inside the namespace (namespaces start with it off). */
export async function setIpForward(ns: string, on: boolean): Promise<void> {
  await runIn(ns, ['sysctl', '-q', '-w', `net.ipv4.ip_forward=${on ? 1 : 0}`]);
}

/** Runs a command to completion inside the namespace (throws on non-zero unless `check: false`). */
export function runIn(ns: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
  return exec(['ip', 'netns', 'exec', ns, ...argv], options);
}

/** Runs iptables inside the namespace, e.g. `iptablesIn(ns, ['-t','nat','-A','POSTROUTING',...])`. */
export function iptablesIn(ns: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
  return runIn(ns, ['iptables', '-w', ...args], options);
}

export interface SpawnOptions {
  /** Own process group (default true), so `kill()` reaches every child. */
  detached?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Also append stdout+stderr to this file. */
  logFile?: string;
}

/** A long-running process inside a namespace. `kill()` signals its whole process group. */
export class SpawnedProcess {
  readonly pid: number;
  /** Resolves when the process exits (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private out = '';
  private done = false;
  private readonly listeners = new Set<(chunk: string) => void>();
  private log: WriteStream | undefined;

  constructor(
    private readonly child: ChildProcess,
    private readonly group: boolean,
    logFile?: string,
  ) {
    if (child.pid === undefined) throw new Error('spawn failed: no pid');
    this.pid = child.pid;
    this.log = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
    const onData = (b: Buffer): void => {
      const s = b.toString('utf8');
      this.out += s;
      this.log?.write(s);
      for (const l of this.listeners) l(s);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      });
      child.on('error', () => {
        this.done = true;
        resolve({ code: null, signal: null });
      });
    });
    void this.exited.then(() => {
      processes.delete(this);
      this.log?.end();
    });
  }

  /** Everything written to stdout and stderr so far. */
  output(): string {
    return this.out;
  }

  get running(): boolean {
    return !this.done;
  }

  /**
   * Waits until the output matches `pattern` (checks what is already there first). Rejects on timeout
   * or when the process exits first, with the tail of the output in the message.
   */
  waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const now = this.out.match(pattern);
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      const check = (): void => {
        const m = this.out.match(pattern);
        if (m) {
          cleanup();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timeout waiting for ${pattern}; output tail:\n${this.out.slice(-3000)}`));
      }, timeoutMs);
      this.listeners.add(check);
      void this.exited.then(({ code, signal }) => {
        if (!this.listeners.has(check)) return;
        check();
        if (!this.listeners.has(check)) return;
        cleanup();
        reject(
          new Error(
            `process exited (${code ?? signal}) before ${pattern}; output tail:\n${this.out.slice(-3000)}`,
          ),
        );
      });
    });
  }

  /** Signals the process group (or the process). Safe to call after exit. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.done) return;
    try {
      process.kill(this.group ? -this.pid : this.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.done) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * Starts `argv` inside the namespace, in its own process group by default. `ip netns exec` execs the
 * command in place, so `pid` is the command's own pid.
 */
export function spawnIn(ns: string, argv: readonly string[], options: SpawnOptions = {}): SpawnedProcess {
  const group = options.detached !== false;
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
    detached: group,
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = new SpawnedProcess(child, group, options.logFile);
  processes.add(p);
  return p;
}

/** Kills every tracked process (group) and deletes every tracked namespace. Never throws. */
export async function cleanupAll(): Promise<void> {
  for (const p of [...processes]) p.kill('SIGKILL');
  await Promise.all(
    [...processes].map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 2000))])),
  );
  for (const ns of [...namespaces]) await destroyNamespace(ns);
}

// Last resort when a test run dies without its `after` hooks: remove what we made, synchronously.
process.once('exit', () => {
  for (const p of processes) p.kill('SIGKILL');
  for (const ns of namespaces) {
    spawnSync('ip', ['netns', 'del', ns]);
  }
});

/**
 * A small builder for multi-namespace test networks. Roles ("office", "node", ...) map to unique namespace
 * names; links get generated interface names (`vx1`, `vx2`, ...) unique within the topology.
 */
export class Topology {
  readonly ns: Record<string, string> = {};
  /** Interface names by `${role}:${peerRole}`. */
  readonly ifaces: Record<string, string> = {};
  private n = 0;

  constructor(private readonly prefix = 'pgt') {}

  /** Creates the namespace for `role` (idempotent) and returns its name. */
  async add(role: string): Promise<string> {
    if (!this.ns[role]) this.ns[role] = await createNamespace(`${this.prefix}${role.slice(0, 3)}`);
    return this.ns[role]!;
  }

  /** Links two roles with a veth pair and gives each end an address ("172.18.12.21/24"). */
  async link(a: string, aCidr: string, b: string, bCidr: string): Promise<{ aIf: string; bIf: string }> {
    const [nsA, nsB] = [await this.add(a), await this.add(b)];
    const aIf = `vx${++this.n}`;
    const bIf = `vx${++this.n}`;
    await addVeth(nsA, aIf, nsB, bIf);
    await addAddress(nsA, aIf, aCidr);
    await addAddress(nsB, bIf, bCidr);
    this.ifaces[`${a}:${b}`] = aIf;
    this.ifaces[`${b}:${a}`] = bIf;
    return { aIf, bIf };
  }

  async route(role: string, dest: string, gateway: string): Promise<void> {
    await addRoute(this.name(role), dest, { gateway });
  }

  async forward(role: string, on = true): Promise<void> {
    await setIpForward(this.name(role), on);
  }

  name(role: string): string {
    const ns = this.ns[role];
    if (!ns) throw new Error(`topology has no namespace for role ${role}`);
    return ns;
  }

  run(role: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return runIn(this.name(role), argv, options);
  }

  spawn(role: string, argv: readonly string[], options?: SpawnOptions): SpawnedProcess {
    return spawnIn(this.name(role), argv, options);
  }

  iptables(role: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return iptablesIn(this.name(role), args, options);
  }

  /** Kills what runs in these namespaces and deletes them. Never throws. */
  async destroy(): Promise<void> {
    for (const ns of Object.values(this.ns)) await destroyNamespace(ns);
  }
}

/**
 * Addresses of the standard office ─ node ─ pod topology: an office host, a Kubernetes node running the
 * VPN server, and a pod behind the node. Test addresses only, used inside namespaces the test creates.
 */
export const OFFICE_NODE_POD = {
  office: '172.18.12.100',
  node: '172.18.12.21',
  nodePodSide: '10.244.1.1',
  pod: '10.244.1.5',
  podCidr: '10.244.0.0/16',
  /** A ClusterIP that the node DNATs to the pod, like kube-proxy does. */
  clusterIp: '10.96.0.10',
  serviceCidr: '10.96.0.0/12',
} as const;

/**
 * office (172.18.12.100) ─ node (172.18.12.21, forwarding on) ─ pod (10.244.1.5, route to 10.244.0.0/16
 * via the node and none to the VPN subnet). With `clusterIp: true` (default) the node DNATs
 * 10.96.0.10 to the pod, so ClusterIP traffic can be tested too. The VPN server's NAT is the caller's job.
 */
export async function officeNodePod(
  options: { prefix?: string; clusterIp?: boolean } = {},
): Promise<Topology> {
  const t = new Topology(options.prefix ?? 'pg');
  const a = OFFICE_NODE_POD;
  try {
    await t.link('office', `${a.office}/24`, 'node', `${a.node}/24`);
    await t.link('node', `${a.nodePodSide}/24`, 'pod', `${a.pod}/24`);
    await t.route('pod', a.podCidr, a.nodePodSide);
    await t.forward('node');
    if (options.clusterIp !== false) {
      await t.iptables('node', [
        '-t',
        'nat',
        '-A',
        'PREROUTING',
        '-d',
        a.clusterIp,
        '-j',
        'DNAT',
        '--to-destination',
        a.pod,
      ]);
    }
    return t;
  } catch (err) {
    await t.destroy();
    throw err;
  }
}
