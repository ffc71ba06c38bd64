/**
 * Two OpenVPN server replicas (`vpn.replicas: 2`) on a real node: the control plane built from upstream,
 * one real node (kubelet, containerd, kube-proxy in iptables mode) in its own network namespace at
 * 172.18.12.21. Both replicas run on that one node: this machine has 2 cores and runs one test node at a
 * time; the topology spread constraint is `ScheduleAnyway`, so one node is a valid placement.
 *
 *   rp1..rp8 (172.18.12.12x) ── lan0 ── node 172.18.12.21 ── NodePort 30030 ── replica A | replica B
 *
 * Clients connect until each replica holds at least two (kube-proxy picks a replica per UDP flow); a
 * revoke of one client on each replica cuts both while the others stay; a disconnect through the web API
 * reaches whichever replica holds the session; deleting one server pod moves its clients to the other
 * replica by themselves (the profile's keepalive and connect-retry, and the server's exit notice); a
 * rolling update (a server.conf change) moves every client once more; a revoked profile dials throughout
 * both and is always refused. The admin sessions page, in Chromium, names both replicas. Every figure
 * (revoke → cut, time without traffic, reconnect) is printed, never asserted.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { exec } from '../../src/lib/exec.js';
import { newDeviceProfile } from '../helpers/web-devices.js';
import { loadConfig } from '../../src/config/load.js';
import { openContext, type AppContext } from '../../src/services/context.js';
import { contextDepsFor } from '../../src/main.js';
import { createApp } from '../../src/web/app.js';
import { startServer } from '../../src/web/server.js';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, SHOTS, watchConsoleErrors } from '../helpers/browser.js';
import { createKubeApi, loadKubeConfig } from '../../src/cluster/kube-client.js';
import { ReplicaSessionsProvider } from '../../src/cluster/replica-sessions.js';
import { clusterServiceFor } from '../../src/cluster/index.js';
import { UsageService } from '../../src/services/usage.js';
import { cleanupAll, createNamespace, spawnIn, runIn, type SpawnedProcess } from '../helpers/netns.js';
import { PUSHED_HALT, startClient, waitClientConnected } from '../helpers/openvpn.js';
import { attachToLan, NODE_IP, NODE_NETNS, defaultRunDir } from '../cluster/node/node.js';
import { POD_FILES, POD_PATHS } from '../../src/cluster/pod-layout.js';
import { claimRealNode, startRealNode, stopRealNode } from '../cluster/node/real-node-run.js';
import type { ControlPlane } from '../cluster/control-plane.js';
import { webWorkload, managerKubeconfig } from '../cluster/node/workloads.js';
import { kubectlBin } from '../cluster/node/paths.js';
import { kubectlSlices, waitForService } from '../cluster/node/service-ready.js';

const CLI = join(process.cwd(), 'dist/bundle/podgate.js');
const REPO = process.cwd();
const NODE_PORT = 30030;
/** Connects to host:port every 100 ms (300 ms timeout) and prints `ok <epoch ms>` for each answer. */
const PROBER = [
  "const net = require('net');",
  'const [host, port] = [process.argv[1], Number(process.argv[2])];',
  'function once() {',
  '  const s = net.connect({ host, port });',
  '  const done = (good) => { s.destroy(); if (good) console.log(`ok ${Date.now()}`); setTimeout(once, 100); };',
  '  s.setTimeout(300, () => done(false));',
  "  s.on('connect', () => done(true));",
  "  s.on('error', () => done(false));",
  '}',
  'once();',
].join('\n');

/** What a client whose certificate is revoked logs when a server refuses its handshake. */
const REFUSED = /TLS Error|AUTH_FAILED|TLS handshake failed|TLS key negotiation failed/;

async function until<T>(
  what: string,
  f: () => Promise<T | undefined>,
  timeoutMs: number,
  stepMs = 250,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

interface Client {
  name: string;
  serial: string;
  profile: string;
  netns: string;
  proc: SpawnedProcess;
}

describe('e2e: two server replicas on a real node (revoke on each, disconnect anywhere, a pod lost, a rolling update)', function () {
  this.timeout(30 * 60_000);
  let cp: ControlPlane | undefined;
  let work: string;
  let cfgFile: string;
  let adminKc: string;
  let managerKc: string;
  let ctx: AppContext;
  let agent: ReturnType<typeof request.agent>;
  let csrf: string;
  let replicas: ReplicaSessionsProvider;
  let history: ReturnType<typeof clusterServiceFor>;
  const clients: Client[] = [];
  /** The clients whose certificates were revoked (one per replica). */
  let victims: Client[] = [];
  const web = { podIp: '' };
  const figures: Record<string, string> = {};
  let locked = false;

  const kubectl = async (...args: string[]) =>
    (await exec([kubectlBin(), '--kubeconfig', adminKc, ...args], { timeoutMs: 120_000 })).stdout;
  const podgate = (...args: string[]) =>
    exec([process.execPath, CLI, '--config', cfgFile, ...args], { timeoutMs: 10 * 60_000 });

  async function wget(nsName: string, url: string): Promise<string | undefined> {
    const script = `fetch(process.argv[1],{signal:AbortSignal.timeout(3000)}).then(r=>r.text()).then(t=>console.log(t),()=>process.exit(1))`;
    const r = await runIn(nsName, [process.execPath, '-e', script, url], { check: false, timeoutMs: 10_000 });
    return r.code === 0 ? r.stdout : undefined;
  }

  const newProfile = (device: string) => newDeviceProfile(agent, csrf, device);

  /**
   * On a failure: what each server pod saw (openvpn and agent logs, its client-config-dir, NAT and
   * nftables), the node's UDP conntrack entries for the NodePort, and each client's log tail, so a
   * failed run explains itself.
   */
  async function diagnostics(): Promise<string> {
    const out: string[] = [];
    const safe = async (label: string, f: () => Promise<string>) => {
      out.push(`----- ${label}`, await f().catch((e: unknown) => `(failed: ${String(e)})`));
    };
    const podList = await kubectl(
      '-n',
      'middleware',
      'get',
      'pods',
      '-l',
      'app.kubernetes.io/component=openvpn',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{"\\n"}{end}',
    ).catch(() => '');
    out.push(`----- server pods\n${podList}`);
    // kubectl logs/exec need the API server to reach the kubelet by the node's name, which the test
    // cluster does not resolve: read the kubelet's log files and enter the pods' namespaces instead
    const logs = join(defaultRunDir(), 'pod-logs');
    for (const dir of existsSync(logs) ? readdirSync(logs).filter((d) => d.includes('podgate-openvpn')) : [])
      for (const c of ['openvpn', 'agent'])
        await safe(`${dir} ${c} log`, async () => {
          const files = readdirSync(join(logs, dir, c)).sort();
          return readFileSync(join(logs, dir, c, files.at(-1)!), 'utf8')
            .split('\n')
            .slice(-80)
            .join('\n');
        });
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        continue;
      }
      if (!cmd.startsWith(`openvpn --config ${POD_FILES.serverConf}`)) continue;
      await safe(`openvpn pid ${pid}: ccd, addresses, nat, conntrack`, async () =>
        [
          (await exec(['ls', '-la', `/proc/${pid}/root${POD_PATHS.ccdDir}`], { check: false })).stdout,
          (await exec(['nsenter', '-t', pid, '-n', 'ip', '-4', 'addr'], { check: false })).stdout,
          (await exec(['nsenter', '-t', pid, '-n', 'iptables-save', '-t', 'nat'], { check: false })).stdout,
          (await exec(['nsenter', '-t', pid, '-n', 'conntrack', '-L'], { check: false })).stdout,
        ].join('\n'),
      );
    }
    await safe(
      'node conntrack (udp)',
      async () => (await runIn(NODE_NETNS, ['conntrack', '-L', '-p', 'udp'], { check: false })).stdout,
    );
    for (const c of clients)
      out.push(`----- client ${c.name}`, c.proc.output().split('\n').slice(-40).join('\n'));
    return out.join('\n');
  }

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed' || !locked || !cp) return;
    this.timeout(3 * 60_000);
    console.log(await diagnostics());
  });

  /** Which replica holds each client's session (from the replicas' own reports). */
  async function placement(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const s of await replicas.list()) out.set(s.commonName, s.replica!);
    return out;
  }

  before(async function () {
    this.timeout(90 * 60_000);
    await claimRealNode(this, 'the replicas e2e (test/e2e/k8s-replicas.test.ts)');
    locked = true;
    work = mkdtempSync(join(tmpdir(), 'pg-k8s-replicas-'));
    const run = await startRealNode(REPO, work);
    ({ cp, adminKc } = run);
    const images = run.images;
    Object.assign(figures, run.figures);
    await exec([kubectlBin(), '--kubeconfig', adminKc, 'apply', '-f', '-'], {
      input: JSON.stringify(webWorkload(images.busybox.ref)),
    });
    await kubectl('rollout', 'status', 'deployment/web', '--timeout=180s');
    web.podIp = (
      await kubectl('get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].status.podIP}')
    ).trim();

    managerKc = await managerKubeconfig(REPO, adminKc, work);
    writeFileSync(join(work, 'admin.pw'), 'admin-password-for-tests\n', { mode: 0o600 });
    cfgFile = join(work, 'podgate.yaml');
    writeFileSync(
      cfgFile,
      [
        `dataDir: ${join(work, 'data')}`,
        // kube-proxy picks a replica per client flow at random: reaching three clients on each can take
        // more than the default 10 devices of one user (about one run in nine, seen on the node)
        'devices:',
        '  maxValidPerUser: 40',
        '  issuesPerHour: 100',
        'vpn:',
        '  replicas: 2',
        'kubernetes:',
        `  kubeconfig: ${managerKc}`,
        `  image: ${images.podgate.ref}`,
        `  nodePort: ${NODE_PORT}`,
        '',
      ].join('\n'),
    );
    await exec([process.execPath, CLI, '--config', cfgFile, 'init'], {
      env: { ...process.env, PODGATE_ADMIN_PASSWORD_FILE: join(work, 'admin.pw') },
    });
    await exec([process.execPath, CLI, '--config', cfgFile, 'access', 'mode', 'open']);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    for (const c of clients) await c.proc.stop(3000).catch(() => undefined);
    await ctx?.close();
    await cleanupAll();
    if (!locked) return;
    const problems = await stopRealNode(cp);
    if (work) rmSync(work, { recursive: true, force: true });
    if (Object.keys(figures).length) {
      console.log('    figures (one node, 2 shared cores, other suites running: indicative only):');
      for (const [k, v] of Object.entries(figures)) console.log(`      ${k}: ${v}`);
    }
    const left = [...problems];
    if (work && existsSync(work)) left.push(`dir ${work}`);
    const netns = (await exec(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!);
    for (const n of netns) if (/^pgnrp/.test(n)) left.push(`netns ${n}`);
    assert.deepEqual(left, [], 'the run left nothing behind');
  });

  it('k8s deploy with vpn.replicas 2: two Ready server pods, a PodDisruptionBudget keeping one; k8s status lists both replicas with the CRL in force', async () => {
    await podgate('k8s', 'discover');
    const out = (await podgate('k8s', 'deploy')).stdout;
    assert.match(out, /rollout ready/);
    const pods = await kubectl(
      '-n',
      'middleware',
      'get',
      'pods',
      '-l',
      'app.kubernetes.io/component=openvpn',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[*].ready}{"\\n"}{end}',
    );
    const ready = pods
      .trim()
      .split('\n')
      .filter((l) => /true true$/.test(l));
    assert.equal(ready.length, 2, pods);
    const pdb = JSON.parse(
      await kubectl('-n', 'middleware', 'get', 'pdb', 'podgate-openvpn', '-o', 'json'),
    ) as {
      spec: { minAvailable: number };
    };
    assert.equal(pdb.spec.minAvailable, 1);
    await waitForService({
      service: 'middleware/podgate-openvpn',
      slices: kubectlSlices(kubectlBin(), adminKc, 'middleware', 'podgate-openvpn'),
    });
    // each agent reports through its own Lease: both replicas listed, each with a CRL number in force and
    // openvpn answering (a pod is Ready once the management socket exists; its agent reads openvpn every
    // 5 s, so the first report after start may still say "openvpn not answering")
    const line = /^replica podgate-openvpn-\S+: Ready, CRL #\d+ \(up to date\), rules v\d+, 0 session\(s\)$/;
    let last = '';
    await until(
      'both replicas reporting, openvpn answering',
      async () => {
        last = (await podgate('k8s', 'status')).stdout;
        return last.split('\n').filter((l) => line.test(l)).length === 2 || undefined;
      },
      60_000,
      1000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; last k8s status:\n${last}`);
    });
  });

  it('clients land on both replicas; a revoke cuts the one on each replica, the others stay; a disconnect reaches whichever replica holds the session', async () => {
    const config = loadConfig({ file: cfgFile });
    ctx = await openContext(config, contextDepsFor(config));
    const kube = createKubeApi(loadKubeConfig({ kubeconfig: managerKc } as never));
    replicas = new ReplicaSessionsProvider({
      kube: () => kube,
      namespace: 'middleware',
    });
    agent = request.agent(createApp({ ctx, sessions: replicas }));
    const login = await agent
      .post('/api/v1/login')
      .send({ name: 'admin', password: 'admin-password-for-tests' });
    assert.equal(login.status, 200, login.text);
    csrf = (login.body as { csrfToken: string }).csrfToken;

    // clients until each replica holds at least three (kube-proxy picks a replica per UDP flow)
    let where = new Map<string, string>();
    const counts = () => {
      const c = new Map<string, number>();
      for (const r of where.values()) c.set(r, (c.get(r) ?? 0) + 1);
      return c;
    };
    // (up to 24: the chance that one replica still has fewer than three is then about 1 in 30,000)
    for (let i = 1; i <= 24; i++) {
      const c = counts();
      if (c.size === 2 && [...c.values()].every((n) => n >= 3)) break;
      const netns = await createNamespace(`pgnrp${i}`);
      await attachToLan(netns, 'eth0', `172.18.12.${120 + i}/24`, `lp${i}`);
      const { profile, serial } = await newProfile(`dev${i}`);
      assert.match(profile, new RegExp(`^remote ${NODE_IP.replace(/\./g, '\\.')} ${NODE_PORT}`, 'm'));
      const proc = startClient(netns, work, `dev${i}`, profile);
      clients.push({ name: `admin.dev${i}`, serial, profile, netns, proc });
      await waitClientConnected(proc, 90_000);
      where = await until(
        `dev${i} reported by its replica`,
        async () => {
          const p = await placement();
          return p.has(`admin.dev${i}`) ? p : undefined;
        },
        30_000,
        500,
      );
    }
    const byReplica = counts();
    figures['clients per replica'] = [...byReplica.entries()].map(([r, n]) => `${r}: ${n}`).join(', ');
    assert.equal(byReplica.size, 2, `clients on both replicas: ${figures['clients per replica']}`);

    // the sessions API names the replica of every session
    const api = await agent.get('/api/v1/sessions?perPage=100');
    assert.equal(api.status, 200, api.text);
    const listed = (
      api.body as { items: { cid: string; commonName: string; replica: string; virtualAddress: string }[] }
    ).items;
    assert.equal(listed.length, clients.length);
    assert.equal(new Set(listed.map((s) => s.replica)).size, 2);
    // `podgate sessions` (the CLI, through the manager's kubeconfig) names the same replicas
    const cli = JSON.parse((await podgate('sessions', '--cluster', '--json')).stdout) as {
      commonName: string;
      replica: string;
    }[];
    assert.deepEqual(
      cli.map((s) => `${s.commonName}@${s.replica}`).sort(),
      listed.map((s) => `${s.commonName}@${s.replica}`).sort(),
    );
    // the session history records each replica's sessions from its Lease, under pod/<pod>
    history = clusterServiceFor(ctx, new UsageService(ctx.store, () => new Date()));
    await history.syncSessions();
    const recorded = (await ctx.store.listSessionHistory({ user: 'admin' })).filter(
      (r) => r.endedAt === null,
    );
    assert.deepEqual(
      recorded.map((r) => `${r.commonName}@${r.replica}`).sort(),
      listed.map((s) => `${s.commonName}@pod/${s.replica}`).sort(),
    );
    // on each replica every session has a tunnel address of its own (openvpn routes by it)
    figures['tunnel addresses'] = listed
      .map((s) => `${s.commonName}=${s.virtualAddress}@${s.replica}`)
      .join(' ');
    for (const r of new Set(listed.map((s) => s.replica))) {
      const addrs = listed.filter((s) => s.replica === r).map((s) => s.virtualAddress);
      assert.equal(
        new Set(addrs).size,
        addrs.length,
        `unique tunnel addresses on ${r}: ${figures['tunnel addresses']}`,
      );
    }

    // one revoke on each replica
    const [ra, rb] = [...byReplica.keys()] as [string, string];
    victims = [ra, rb].map((r) => clients.find((c) => where.get(c.name) === r)!);
    const cuts: string[] = [];
    for (const v of victims) {
      const t0 = Date.now();
      const res = await agent
        .post(`/api/v1/certs/${v.serial}/revoke`)
        .set('X-CSRF-Token', csrf)
        .send({ reason: 'keyCompromise' });
      assert.equal(res.status, 200, res.text);
      await until(
        'the client to be cut',
        async () => PUSHED_HALT.test(v.proc.output()) || !v.proc.running || undefined,
        60_000,
        20,
      );
      cuts.push(`${where.get(v.name)}: ${Date.now() - t0} ms`);
    }
    figures['revoke → cut, one client on each replica'] = cuts.join(', ');

    // a disconnect through the web API, on each replica
    const kept = clients.filter((c) => !victims.includes(c));
    const ended: Client[] = [];
    for (const r of [ra, rb]) {
      const c = kept.find((k) => where.get(k.name) === r && !ended.includes(k))!;
      const session = listed.find((s) => s.commonName === c.name)!;
      assert.equal(session.replica, r);
      const t0 = Date.now();
      const res = await agent
        .delete(`/api/v1/sessions/${encodeURIComponent(session.cid)}`)
        .set('X-CSRF-Token', csrf);
      assert.equal(res.status, 204, res.text);
      await until(
        'the disconnected client to stop',
        async () => PUSHED_HALT.test(c.proc.output()) || undefined,
        30_000,
        20,
      );
      figures[`disconnect through the API (${r})`] = `${Date.now() - t0} ms`;
      ended.push(c);
    }
    const staying = kept.filter((c) => !ended.includes(c));
    for (const c of staying) {
      assert.ok(c.proc.running, `${c.name} still connected`);
      assert.match(
        (await wget(c.netns, `http://${web.podIp}/`)) ?? '',
        /hello from web/,
        `${c.name} reaches the pod`,
      );
    }
    // the reports show exactly the staying sessions
    const after = await until(
      'the reports to drop the ended sessions',
      async () => {
        const p = await placement();
        return p.size === staying.length ? p : undefined;
      },
      30_000,
      500,
    );
    assert.deepEqual([...after.keys()].sort(), staying.map((c) => c.name).sort());
  });

  it('the admin sessions page in Chromium lists the sessions of both replicas, each with its replica', async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
      this.skip();
    }
    // the web app as `serve` runs it in cluster mode: the sessions come from the replicas' Leases
    const server = await startServer({ ctx, host: '127.0.0.1', port: 0, sessions: replicas });
    const profileDir = mkdtempSync(join(tmpdir(), 'pg-k8s-replicas-chromium-'));
    const browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 860 },
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      watchConsoleErrors(page, errors, { origin: server.url });
      await page.goto(`${server.url}/login`);
      await page.fill('#name', 'admin');
      await page.fill('#password', 'admin-password-for-tests');
      await Promise.all([page.waitForURL(`${server.url}/devices`), page.press('#password', 'Enter')]);
      await page.goto(`${server.url}/admin/sessions`);
      const rows = await page.$$eval('#sessions tbody tr', (trs) =>
        trs.map((tr) => {
          const cell = (label: string) =>
            tr.querySelector(`td[data-label="${label}"]`)?.textContent?.trim() ?? '';
          return `${cell('Certificate')}@${cell('Replica')}`;
        }),
      );
      const live = (await replicas.list()).map((s) => `${s.commonName}@${s.replica}`);
      assert.deepEqual(rows.sort(), live.sort(), 'the page lists what the replicas report');
      assert.equal(new Set(rows.map((r) => r.split('@')[1])).size, 2, `both replicas: ${rows.join(' ')}`);
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, 'sessions-two-replicas-desktop.png'), fullPage: true });
      assert.deepEqual(errors, [], 'no console errors');
    } finally {
      await browser.close().catch(() => undefined);
      await server.close().catch(() => undefined);
      rmSync(profileDir, { recursive: true, force: true });
    }
  });

  /** Answered probe times (epoch ms) in a PROBER's output. */
  const replies = (out: string) => [...out.matchAll(/^ok (\d+)$/gm)].map((m) => Number(m[1]));

  /** The longest time between two answered probes, of the gaps that end at or after `t0`. */
  function longestGap(name: string, out: string, t0: number): number {
    const times = replies(out);
    // replies before the change and after it, or the figure would mean nothing
    assert.ok(
      times.some((t) => t < t0) && times.some((t) => t > t0 + 1000),
      `${name}: answered probes around the change`,
    );
    let worst = 0;
    for (let i = 1; i < times.length; i++)
      if (times[i]! >= t0) worst = Math.max(worst, times[i]! - times[i - 1]!);
    return worst;
  }

  /**
   * A TCP connect to the web pod every 100 ms through `c`'s tunnel (this machine has no iputils ping, and
   * busybox's prints no timestamps): the longest gap between answered probes is the time without traffic.
   */
  const probe = (c: Client) => spawnIn(c.netns, [process.execPath, '-e', PROBER, web.podIp, '80']);

  /**
   * Follows clients' openvpn logs every 100 ms: when each one restarted (the server's exit notice, or
   * ping-restart) and when it completed a connection again. Each time is within 100 ms of the log line.
   */
  function followClients(list: Client[]) {
    const count = (c: Client, re: RegExp) => (c.proc.output().match(re) ?? []).length;
    const RESTART = /process restarting/g;
    const DONE = /Initialization Sequence Completed/g;
    const seen = list.map((c) => ({ restarts: count(c, RESTART), completes: count(c, DONE) }));
    const events = list.map(() => ({ restarts: [] as number[], completes: [] as number[] }));
    const look = () =>
      list.forEach((c, i) => {
        const [r, d] = [count(c, RESTART), count(c, DONE)];
        for (; seen[i]!.restarts < r; seen[i]!.restarts++) events[i]!.restarts.push(Date.now());
        for (; seen[i]!.completes < d; seen[i]!.completes++) events[i]!.completes.push(Date.now());
      });
    const timer = setInterval(look, 100);
    return {
      events,
      stop: () => {
        clearInterval(timer);
        look();
      },
      /** Restart → connected again, for each reconnect of client `i` (ms). */
      reconnects: (i: number): number[] =>
        events[i]!.completes.map((done) => {
          const from = events[i]!.restarts.filter((r) => r <= done).at(-1);
          return from === undefined ? NaN : done - from;
        }),
    };
  }

  /**
   * A revoked client dialling again and again (openvpn restarts after each refused handshake) while
   * something changes: `end()` stops it and asserts it was refused at least once and never connected.
   */
  function revokedDialling(v: Client, tag: string) {
    const p = startClient(v.netns, work, `${v.name}-${tag}`, v.profile, ['--hand-window', '10']);
    return {
      async end(): Promise<number> {
        await until('a refused handshake', async () => REFUSED.test(p.output()) || undefined, 60_000);
        await p.stop(3000);
        assert.doesNotMatch(p.output(), /Initialization Sequence Completed/, `${v.name} is revoked`);
        return (p.output().match(new RegExp(REFUSED.source, 'g')) ?? []).length;
      },
    };
  }

  it('a deleted server pod: its clients move to the other replica by themselves (figure: time without traffic); the revocations hold throughout', async () => {
    const where = await placement();
    const pods = new Set(where.values());
    const counts = [...pods].map((p) => [p, [...where.values()].filter((r) => r === p).length] as const);
    const [lost] = counts.sort((a, b) => b[1] - a[1])[0]!;
    const moving = clients.filter((c) => c.proc.running && where.get(c.name) === lost);
    const staying = clients.filter(
      (c) => c.proc.running && where.get(c.name) !== undefined && where.get(c.name) !== lost,
    );
    assert.ok(
      moving.length > 0 && staying.length > 0,
      `clients on both replicas: ${JSON.stringify([...where])}`,
    );
    const pings = moving.map(probe);
    const keepPing = probe(staying[0]!);
    const revoked = revokedDialling(victims[0]!, 'during-delete');
    await new Promise((r) => setTimeout(r, 2000));
    const follow = followClients(moving);
    const t0 = Date.now();
    await kubectl('-n', 'middleware', 'delete', 'pod', lost, '--wait=false');
    await until(
      'every moving client reconnected',
      async () => follow.events.every((e) => e.completes.length > 0) || undefined,
      180_000,
      100,
    );
    await new Promise((r) => setTimeout(r, 3000));
    follow.stop();
    for (const p of [...pings, keepPing]) await p.stop(2000);
    const gaps = pings.map((p, i) => longestGap(moving[i]!.name, p.output(), t0));
    figures['pod deleted → each moving client without traffic (a TCP connect every 100 ms)'] = gaps
      .map((g) => `${(g / 1000).toFixed(1)} s`)
      .join(', ');
    figures['pod deleted → each moving client connected again (openvpn, from the deletion)'] = follow.events
      .map((e) => `${((e.completes[0]! - t0) / 1000).toFixed(1)} s`)
      .join(', ');
    figures['pod deleted → each moving client, restart → connected (openvpn)'] = moving
      .map((_, i) => `${(follow.reconnects(i)[0]! / 1000).toFixed(1)} s`)
      .join(', ');
    figures['pod deleted → a client of the other replica, longest gap'] =
      `${(longestGap(staying[0]!.name, keepPing.output(), t0) / 1000).toFixed(1)} s`;
    for (const c of moving)
      assert.match(
        (await wget(c.netns, `http://${web.podIp}/`)) ?? '',
        /hello from web/,
        `${c.name} reaches the pod again`,
      );
    assert.ok(
      staying.every((c) => c.proc.running),
      'clients of the other replica stay',
    );
    const now = await until(
      'the moved clients reported by the other replica',
      async () => {
        const p = await placement();
        return moving.every((c) => p.get(c.name) && p.get(c.name) !== lost) ? p : undefined;
      },
      60_000,
      1000,
    );
    assert.ok(moving.every((c) => now.get(c.name) !== lost));
    // the history ends the lost replica's sessions (its Lease went with the pod) and records the moved ones
    await until(
      "the lost replica's sessions ended in the history",
      async () => {
        await history.syncSessions();
        const rows = await ctx.store.listSessionHistory({ user: 'admin' });
        const open = (c: Client, pod: string) =>
          rows.some((r) => r.commonName === c.name && r.replica === `pod/${pod}` && r.endedAt === null);
        return moving.every((c) => !open(c, lost) && open(c, now.get(c.name)!)) || undefined;
      },
      60_000,
      1000,
    );
    // the revoked profile dialled all along (the old replica, the surviving one, the new one): refused
    figures['pod deleted → revoked client refused (handshakes)'] = String(await revoked.end());
  });

  it('a rolling update (a config change): with a TCP probe every 100 ms through every tunnel, each client loses about its reconnect time; the revoked profile stays refused throughout', async () => {
    const live = clients.filter((c) => c.proc.running);
    assert.ok(live.length >= 2, `clients still connected: ${live.map((c) => c.name).join(' ')}`);
    const serverPods = async () =>
      (
        await kubectl(
          '-n',
          'middleware',
          'get',
          'pods',
          '-l',
          'app.kubernetes.io/component=openvpn',
          '-o',
          'jsonpath={.items[*].metadata.name}',
        )
      )
        .split(/\s+/)
        .filter(Boolean);
    const oldPods = new Set(await serverPods());
    const pings = live.map(probe);
    const revoked = revokedDialling(victims[1]!, 'during-rollout');
    await new Promise((r) => setTimeout(r, 2000));
    const follow = followClients(live);
    // a DNS search domain pushed to clients: server.conf changes, and with it the pod template's checksum
    const cfg = readFileSync(cfgFile, 'utf8');
    writeFileSync(
      cfgFile,
      cfg.replace('  replicas: 2\n', '  replicas: 2\n  dns:\n    searchDomains: [rollout.example]\n'),
    );
    const t0 = Date.now();
    assert.match((await podgate('k8s', 'deploy')).stdout, /rollout ready/);
    figures['rolling update: k8s deploy → rollout ready'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const newPods = await until(
      'two new server pods, the old ones gone',
      async () => {
        const now = await serverPods();
        return now.length === 2 && now.every((p) => !oldPods.has(p)) ? now : undefined;
      },
      180_000,
      1000,
    );
    await until(
      'every client reported by a new replica',
      async () => {
        const p = await placement();
        return live.every((c) => newPods.includes(p.get(c.name) ?? '')) || undefined;
      },
      120_000,
      1000,
    );
    await new Promise((r) => setTimeout(r, 3000));
    follow.stop();
    for (const p of pings) await p.stop(2000);
    const rows = live.map((c, i) => {
      const gap = longestGap(c.name, pings[i]!.output(), t0);
      const moves = follow.reconnects(i);
      return { c, gap, moves };
    });
    figures['rolling update: per client, longest gap (moves: restart → connected)'] = rows
      .map(
        ({ c, gap, moves }) =>
          `${c.name.replace('admin.', '')} ${(gap / 1000).toFixed(1)} s (${moves.map((m) => `${(m / 1000).toFixed(1)} s`).join(' + ') || 'no move'})`,
      )
      .join(', ');
    for (const { c, moves } of rows) {
      assert.ok(c.proc.running, `${c.name} still running (not halted) after the rollout`);
      assert.ok(moves.length > 0, `${c.name} moved to a new replica (its old one was replaced)`);
      assert.match(
        (await wget(c.netns, `http://${web.podIp}/`)) ?? '',
        /hello from web/,
        `${c.name} reaches the pod after the rollout`,
      );
    }
    figures['rolling update → revoked client refused (handshakes)'] = String(await revoked.end());
  });
});
