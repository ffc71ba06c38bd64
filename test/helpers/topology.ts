/**
 * The VPN lab the e2e suites share: the office ─ node ─ pod namespaces of ./netns.ts, a work dir with a
 * podgate config (EC CA, endpoint on the node, pod routes) and an admin password file, the real CLI against
 * that config, an openvpn server in the node namespace (`podgate server run`, or any process the suite
 * starts and assigns to `server`), and openvpn clients in the office namespace.
 *
 * Root only, like ./netns.ts; everything stays inside the namespaces the lab creates.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { exec, type ExecResult } from '../../src/lib/exec.js';
import { serverPaths } from '../../src/openvpn/server-files.js';
import { CLI } from './cli.js';
import {
  canUseNetns,
  cleanupAll,
  officeNodePod,
  OFFICE_NODE_POD as A,
  type SpawnedProcess,
  type Topology,
} from './netns.js';
import { startClient, waitClientConnected } from './openvpn.js';

/** What openvpn 2.6 logs when it refuses a revoked client certificate. */
export const REVOKED = /certificate revoked|CRL CHECK FAILED/i;

/** The admin password `init` is given (through PODGATE_ADMIN_PASSWORD_FILE). */
export const ADMIN_PASSWORD = 'admin-password-for-tests';

/**
 * In a `before` hook: skips the suite when namespaces cannot be made here (not root, no iproute2) or
 * `also` is false; in CI (`CI=true`) a missing prerequisite fails instead, naming `need`.
 */
export async function requireNetns(
  ctx: Mocha.Context,
  also = true,
  need = 'network namespaces need root + iproute2',
): Promise<void> {
  if ((await canUseNetns()) && also) return;
  if (process.env.CI === 'true') throw new Error(need);
  ctx.skip();
}

/** How many times `re` matches `text`. */
export function count(text: string, re: RegExp): number {
  return (text.match(new RegExp(re.source, 'g')) ?? []).length;
}

/** Polls `cond` every 50 ms; rejects naming `what` when it is still false after `timeoutMs`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface LabOptions {
  /** Namespace name prefix (a few letters). */
  prefix: string;
  /** `vpn.port`; podgate's default when left out. */
  port?: number;
  /** Push the service range (10.96.0.0/12) as well as the pod range. */
  services?: boolean;
  /** More pod ranges pushed beside 10.244.0.0/16 (e.g. an IPv6 one, with `clientSubnet6` in `vpn`). */
  podRoutes?: string[];
  /** More lines under `vpn:` (YAML, indented two spaces), e.g. `'  nat: true'`. */
  vpn?: string[];
  /** More top-level lines of podgate.yaml, e.g. `'access: { modeBeforeBundle: enforce }'`. */
  top?: string[];
  /** `ca.keyType` of a new CA; podgate's default (ec-p384) when left out. */
  caKeyType?: 'rsa-3072' | 'ec-p384';
}

/** A client that retries every second, so a refused or restarted server is seen quickly. */
const CLIENT_ARGS = ['--connect-retry', '1', '1'];

export class VpnLab {
  /** Profiles by name, from `issue()` or set by the suite. */
  readonly profiles: Record<string, string> = {};
  /** The openvpn server the lab's `refused`/`serverSays` read: `startServerRun()` sets it. */
  server: SpawnedProcess | undefined;
  private readonly dataDirs: string[];

  private constructor(
    readonly topo: Topology,
    readonly work: string,
    readonly cfgFile: string,
  ) {
    this.dataDirs = [this.dataDir];
  }

  /**
   * Builds the office ─ node ─ pod namespaces (ClusterIP DNAT included) and a work dir with the config
   * and the admin password file. Nothing is initialised yet: call `init()`.
   */
  static async create(options: LabOptions): Promise<VpnLab> {
    const topo = await officeNodePod({ prefix: options.prefix });
    try {
      return new VpnLab(topo, ...writeWorkDir(options));
    } catch (err) {
      await topo.destroy();
      throw err;
    }
  }

  /** The config file's data dir (`<work>/data`); `--data-dir` in `cli()` args overrides it. */
  get dataDir(): string {
    return join(this.work, 'data');
  }

  /** The config as podgate loads it, for `dataDir` (default: the config file's). */
  config(dataDir?: string): Config {
    return loadConfig({ file: this.cfgFile, overrides: dataDir ? { dataDir } : {} });
  }

  /** Runs the real CLI with `--config <lab config>` and `args`; throws on a non-zero exit. */
  cli(...args: string[]): Promise<ExecResult> {
    return exec([process.execPath, CLI, '--config', this.cfgFile, ...args], { timeoutMs: 60_000 });
  }

  /** `podgate init` with the lab's admin password, on `dataDir` (default: the config file's). */
  async init(dataDir?: string): Promise<void> {
    if (dataDir) this.dataDirs.push(dataDir);
    await exec(
      [process.execPath, CLI, '--config', this.cfgFile, ...(dataDir ? ['--data-dir', dataDir] : []), 'init'],
      { env: { ...process.env, PODGATE_ADMIN_PASSWORD_FILE: join(this.work, 'admin.pw') } },
    );
  }

  /** `podgate cert issue <name> --owner admin`; keeps the profile in `profiles[name]` and returns it. */
  async issue(name: string, dataDir?: string): Promise<string> {
    const out = join(this.work, `${name}.ovpn`);
    const where = dataDir ? ['--data-dir', dataDir] : [];
    await this.cli(...where, 'cert', 'issue', name, '--owner', 'admin', '--out', out);
    this.profiles[name] = readFileSync(out, 'utf8');
    return this.profiles[name];
  }

  /** (Re)starts `podgate server run` in the node namespace and waits until openvpn is up. */
  async startServerRun(): Promise<SpawnedProcess> {
    if (this.server?.running) await this.server.stop(8000);
    const server = this.topo.spawn(
      'node',
      [process.execPath, CLI, '--config', this.cfgFile, 'server', 'run'],
      {
        logFile: join(this.work, `server-run-${Date.now()}.log`),
      },
    );
    this.server = server;
    await server.waitFor(/Initialization Sequence Completed/, 30_000);
    // openvpn can be up before server run's NAT rules are (they are added while it starts): the
    // "running" line comes once start() has finished, NAT included
    await server.waitFor(/podgate server running/, 30_000);
    return server;
  }

  /** Starts an openvpn client with `profile` (default: `profiles[name]`) in the `role` namespace. */
  client(name: string, options: { profile?: string; role?: string } = {}): SpawnedProcess {
    const profile = options.profile ?? this.profiles[name];
    if (profile === undefined) throw new Error(`the lab has no profile named ${name}`);
    const ns = this.topo.name(options.role ?? 'office');
    return startClient(ns, this.work, `${name}-${Date.now()}`, profile, CLIENT_ARGS);
  }

  /**
   * Adds another "pod" namespace behind the node: `role` at `ip` on a /24 of its own, the node at `.1`
   * of it, and a route to the pod range via the node (like a pod on another node's range).
   */
  async addPod(role: string, ip: string): Promise<void> {
    const nodeSide = ip.replace(/\.\d+$/, '.1');
    await this.topo.link('node', `${nodeSide}/24`, role, `${ip}/24`);
    await this.topo.route(role, A.podCidr, nodeSide);
  }

  /** Connects `name`, waits for the tunnel, disconnects. */
  async connects(name: string): Promise<void> {
    const c = this.client(name);
    try {
      await waitClientConnected(c, 20_000);
    } finally {
      await c.stop(5000);
    }
  }

  /** Waits until the server's output shows `re` more than `before` times. */
  async serverSays(re: RegExp, before: number, timeoutMs = 20_000): Promise<void> {
    const server = this.requireServer();
    await until(() => count(server.output(), re) > before, timeoutMs, `server log ${re}`);
  }

  /**
   * Starts a client and waits until the server's output (or, with `side: 'client'`, the client's own)
   * shows `re` once more; asserts the client never completed its connection, then stops it.
   */
  async refused(name: string, re: RegExp = REVOKED, side: 'server' | 'client' = 'server'): Promise<void> {
    const server = this.requireServer();
    const before = count(server.output(), re);
    const c = this.client(name);
    const seen = () => (side === 'server' ? count(server.output(), re) > before : re.test(c.output()));
    try {
      const end = Date.now() + 20_000;
      while (!seen()) {
        if (Date.now() > end)
          throw new Error(
            `timed out waiting for ${name} to be refused (${side} log ${re}); server:\n${server.output().slice(-2500)}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.doesNotMatch(c.output(), /Initialization Sequence Completed/, `${name} must not connect`);
    } finally {
      await c.stop(5000);
    }
  }

  /**
   * Stops the server, removes every namespace and process (./netns.ts `cleanupAll`), the runtime CRL
   * dirs `server run` made under /run/podgate for the lab's data dirs, and the work dir. Never throws
   * for a lab that did not get far.
   */
  async close(): Promise<void> {
    if (this.server?.running) await this.server.stop(8000);
    await cleanupAll();
    for (const dataDir of this.dataDirs) {
      try {
        const runtime = dirname(serverPaths(this.config(dataDir)).activeCrl);
        if (runtime.startsWith('/run/podgate/')) rmSync(runtime, { recursive: true, force: true });
      } catch {
        /* config never loaded */
      }
    }
    rmSync(this.work, { recursive: true, force: true });
  }

  private requireServer(): SpawnedProcess {
    if (!this.server) throw new Error('the lab has no server: call startServerRun() or set `server`');
    return this.server;
  }
}

/** The work dir: admin password file and podgate.yaml for the office ─ node ─ pod addresses. */
function writeWorkDir(options: LabOptions): [work: string, cfgFile: string] {
  const work = mkdtempSync(join(tmpdir(), `pg-e2e-${options.prefix}-`));
  writeFileSync(join(work, 'admin.pw'), `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
  const cfgFile = join(work, 'podgate.yaml');
  const pods = [A.podCidr, ...(options.podRoutes ?? [])].map((c) => `"${c}"`).join(', ');
  const routes = options.services
    ? `{ pods: [${pods}], services: ["${A.serviceCidr}"] }`
    : `{ pods: [${pods}] }`;
  writeFileSync(
    cfgFile,
    [
      `dataDir: ${join(work, 'data')}`,
      ...(options.caKeyType ? [`ca: { keyType: ${options.caKeyType} }`] : []),
      'vpn:',
      ...(options.port === undefined ? [] : [`  port: ${options.port}`]),
      `  endpoints: ["${A.node}"]`,
      `  routes: ${routes}`,
      ...(options.vpn ?? []),
      ...(options.top ?? []),
      '',
    ].join('\n'),
  );
  return [work, cfgFile];
}
