/**
 * Access rules on a real Kubernetes node (the harness of k8s-node.test.ts: control plane from sources,
 * kubelet + containerd + kube-proxy + CNI bridge in the node namespace 172.18.12.21, CoreDNS, the podgate
 * image built from the project's Dockerfile), `access.mode: enforce`:
 *
 *   bob (172.18.12.100, group a) ─┐
 *   carol (172.18.12.101, group b)├─ lan0 ── node ── server pod (openvpn + agent: nft table inet podgate)
 *   admin (172.18.12.102) ────────┘                    └─ team-a: web pod + Service; team-b: the same
 *
 * bob reaches team-a's pod IP, ClusterIP and Service name and not team-b's (TCP connect and ping fail),
 * carol the opposite, admin both; a new team-a pod is reachable by bob; a team-b pod given the address a
 * deleted team-a pod had is not; the pod's policy drops reach the manager's /metrics per replica; bob
 * removed from group a loses team-a on his live session, and so does dave when the identity provider (a
 * real OpenID provider on loopback) drops him from group a and `podgate user sync` reads it, until his
 * next sign-in with the group back restores it; the agent
 * killed: nothing opens meanwhile; a disabled user is refused at connect (AUTH_FAILED: no client-config-dir
 * file) while the CRL publisher is held back; the API server unreachable from the pod at its start: the
 * DNS-only table, and openvpn waits for a verified CRL; the office gateway with a rule for team-a only.
 *
 * Times from a change to its effect are polled with generous deadlines, recorded and printed, never
 * asserted. Part of `npm test`; alone: `npm run test:node-access` (one node per machine: the harness's lock).
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { exec } from '../../src/lib/exec.js';
import { loadConfig } from '../../src/config/load.js';
import { openContext } from '../../src/services/context.js';
import { contextDepsFor } from '../../src/main.js';
import { startAccessTimers } from '../../src/services/access-timers.js';
import { openOidc } from '../../src/services/oidc.js';
import { createMetrics } from '../../src/web/metrics.js';
import { clusterServiceFor } from '../../src/cluster/index.js';
import { createApp } from '../../src/web/app.js';
import { Jar, request as step, throughProvider } from '../helpers/oidc-driver.js';
import { startTestProvider } from '../helpers/oidc-provider.js';
import { reservePort } from '../helpers/oidc-setup.js';
import {
  addAddress,
  addRoute,
  addVeth,
  cleanupAll,
  createNamespace,
  dnsQuery,
  runIn,
  tcpConnects,
  type SpawnedProcess,
} from '../helpers/netns.js';
import { startClient, waitClientConnected } from '../helpers/openvpn.js';
import { attachToLan, defaultRunDir, NODE_IP, NODE_NETNS } from '../cluster/node/node.js';
import { makeKey, startSshd } from '../helpers/sshd.js';
import { CLUSTER_DNS_IP } from '../cluster/node/with-node.js';
import { claimRealNode, startRealNode, stopRealNode } from '../cluster/node/real-node-run.js';
import type { ControlPlane } from '../cluster/control-plane.js';
import type { ImageSet } from '../cluster/images/build-images.js';
import {
  managerKubeconfig,
  serviceAccountKubeconfig,
  teamPod,
  teamWorkload,
} from '../cluster/node/workloads.js';
import { kubectlBin } from '../cluster/node/paths.js';

const CLI = join(process.cwd(), 'dist/src/cli.js');
const REPO = process.cwd();
const NODE_PORT = 30030;
/** Generous: a deadline only says when to stop waiting; the time it took is what gets printed. */
const LIVE_DEADLINE_MS = 60_000;

async function until<T>(
  what: string,
  f: () => Promise<T | undefined | false>,
  timeoutMs: number,
  stepMs = 100,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

const ipToInt = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

describe('e2e: access rules enforced in the server pod on a real node', function () {
  this.timeout(40 * 60_000);
  let cp: ControlPlane | undefined;
  let work: string;
  let cfgFile: string;
  let adminKc: string;
  let images: ImageSet | undefined;
  let locked = false;
  const ns: Record<string, string> = {};
  const clients: Record<string, SpawnedProcess> = {};
  const all: SpawnedProcess[] = [];
  const team = { a: { pod: '', clusterIp: '' }, b: { pod: '', clusterIp: '' } };
  const figures: Record<string, string> = {};
  const leftovers: string[] = [];

  const kubectl = async (...args: string[]) =>
    (await exec([kubectlBin(), '--kubeconfig', adminKc, ...args], { timeoutMs: 120_000 })).stdout;
  const kubectlApply = (obj: unknown) =>
    exec([kubectlBin(), '--kubeconfig', adminKc, 'apply', '-f', '-'], { input: JSON.stringify(obj) });
  const podgateWith = (config: string, ...args: string[]) =>
    exec([process.execPath, CLI, '--config', config, ...args], {
      timeoutMs: 10 * 60_000,
      env: { ...process.env, PODGATE_LOG_LEVEL: 'warn' },
    });
  const podgate = (...args: string[]) => podgateWith(cfgFile, ...args);
  const reach = (who: string, host: string, port = 80, ms = 1500) => tcpConnects(ns[who]!, host, port, ms);
  // busybox-static (a prerequisite of the node suites) has ping; iputils is not installed here
  const ping = async (who: string, host: string) =>
    (await runIn(ns[who]!, ['/bin/busybox', 'ping', '-c', '1', '-W', '1', host], { check: false })).code ===
    0;
  const podIp = async (namespace: string, name: string) =>
    (await kubectl('-n', namespace, 'get', 'pod', name, '-o', 'jsonpath={.status.podIP}')).trim();
  const firstPod = async (namespace: string) =>
    (
      await kubectl(
        '-n',
        namespace,
        'get',
        'pods',
        '-l',
        'app=web',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      )
    ).trim();

  /**
   * A profile for `owner`'s device `device` (common name `<owner>.<device>`: a common name belongs to one
   * owner for ever, so bob's and carol's laptops need names of their own), written by the CLI.
   */
  async function profile(owner: string, device: string): Promise<string> {
    const out = join(work, `${owner}-${device}.ovpn`);
    await podgate('cert', 'issue', `${owner}.${device}`, '--owner', owner, '--out', out);
    return readFileSync(out, 'utf8');
  }

  function connect(who: string, name: string, text: string): SpawnedProcess {
    const p = startClient(ns[who]!, work, `${name}-${Date.now()}`, text, [
      '--connect-retry',
      '1',
      '1',
      '--hand-window',
      '10',
    ]);
    all.push(p);
    return p;
  }

  /** Polls `probe` until it answers `want`; records and returns the time it took. */
  async function becomes(
    label: string,
    want: boolean,
    probe: () => Promise<boolean>,
    t0 = Date.now(),
    deadlineMs = LIVE_DEADLINE_MS,
  ): Promise<number> {
    await until(label, async () => (await probe()) === want || undefined, deadlineMs, 50);
    const ms = Date.now() - t0;
    figures[label] = `${ms} ms`;
    return ms;
  }

  /** `probe` keeps answering false for `ms` (a denial that must hold, not a moment's luck). */
  async function staysDenied(what: string, probe: () => Promise<boolean>, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) assert.equal(await probe(), false, what);
  }

  /** The access rules: what `podgate init` wrote (admins-everything) plus `extra`. */
  async function applyRules(extra: Record<string, unknown>[]): Promise<void> {
    const current = parseYaml((await podgate('access', 'export')).stdout) as { rules?: { name: string }[] };
    const keep = (current.rules ?? []).filter((r) => !extra.some((e) => e.name === r.name));
    const file = join(work, 'rules.yaml');
    writeFileSync(file, toYaml({ rules: [...keep, ...extra] }));
    await podgate('access', 'apply', '-f', file);
  }

  /** The newest process of the server pod whose command line contains `marker` (an old pod may linger). */
  function podProcess(marker: string): number | undefined {
    let best: { pid: number; start: number } | undefined;
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        if (!cmd.includes(marker)) continue;
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
        if (!best || start > best.start) best = { pid: Number(pid), start };
      } catch {
        /* gone */
      }
    }
    return best?.pid;
  }

  /** nft's view of podgate's table inside the server pod's network namespace (through its agent). */
  async function podTable(pid = podProcess('agent --cluster')): Promise<string> {
    assert.ok(pid, 'the server pod runs its agent');
    const r = await exec(['nsenter', '-t', String(pid), '-n', 'nft', 'list', 'table', 'inet', 'podgate'], {
      check: false,
    });
    return r.code === 0 ? r.stdout : `(no table: ${r.stderr.trim()})`;
  }

  before(async function () {
    this.timeout(90 * 60_000);
    await claimRealNode(this, 'the access real-node e2e (test/e2e/k8s-node-access.test.ts)');
    locked = true;
    work = mkdtempSync(join(tmpdir(), 'pg-k8s-access-'));
    const run = await startRealNode(REPO, work);
    ({ cp, adminKc, images } = run);
    Object.assign(figures, run.figures);

    for (const [who, addr, peer] of [
      ['bob', '172.18.12.100', 'lb1'],
      ['carol', '172.18.12.101', 'lc1'],
      ['admin', '172.18.12.102', 'la1'],
    ] as const) {
      ns[who] = await createNamespace(`pgn${who.slice(0, 3)}`);
      await attachToLan(ns[who], 'eth0', `${addr}/24`, peer);
    }

    for (const t of ['a', 'b'] as const) {
      await kubectlApply(teamWorkload(`team-${t}`, t, images!.busybox.ref));
      await kubectl('-n', `team-${t}`, 'rollout', 'status', 'deployment/web', '--timeout=180s');
      team[t].pod = await podIp(`team-${t}`, await firstPod(`team-${t}`));
      team[t].clusterIp = (
        await kubectl('-n', `team-${t}`, 'get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}')
      ).trim();
    }

    const managerKc = await managerKubeconfig(REPO, adminKc, work);
    writeFileSync(join(work, 'admin.pw'), 'admin-password-for-tests\n', { mode: 0o600 });
    cfgFile = join(work, 'podgate.yaml');
    writeFileSync(
      cfgFile,
      [
        `dataDir: ${join(work, 'data')}`,
        'kubernetes:',
        `  kubeconfig: ${managerKc}`,
        `  image: ${images!.podgate.ref}`,
        `  nodePort: ${NODE_PORT}`,
        '',
      ].join('\n'),
    );
    await exec([process.execPath, CLI, '--config', cfgFile, 'init'], {
      env: { ...process.env, PODGATE_ADMIN_PASSWORD_FILE: join(work, 'admin.pw') },
    });
    assert.match((await podgate('access', 'mode')).stdout, /access\.mode: enforce/);
    for (const u of ['bob', 'carol']) await podgate('user', 'add', u);
    for (const g of ['a', 'b']) await podgate('group', 'add', g);
    await podgate('group', 'member', 'add', 'a', 'bob');
    await podgate('group', 'member', 'add', 'b', 'carol');
    await applyRules([
      {
        name: 'team-a',
        subjects: [{ kind: 'group', name: 'a' }],
        destinations: [{ kind: 'namespace', names: ['team-a'] }],
      },
      {
        name: 'team-b',
        subjects: [{ kind: 'group', name: 'b' }],
        destinations: [{ kind: 'namespace', names: ['team-b'] }],
      },
    ]);
    const t0 = Date.now();
    const out = (await podgate('k8s', 'deploy')).stdout;
    assert.match(out, /rollout ready/);
    figures['k8s deploy (enforce) → Ready'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  });

  after(async function () {
    this.timeout(5 * 60_000);
    for (const c of all) await c.stop(3000).catch(() => undefined);
    await cleanupAll();
    for (const d of leftovers) rmSync(d, { recursive: true, force: true });
    try {
      rmdirSync('/run/podgate-gw');
    } catch {
      /* not empty or already gone */
    }
    if (!locked) return;
    const problems = await stopRealNode(cp);
    if (work) rmSync(work, { recursive: true, force: true });
    if (Object.keys(figures).length) {
      console.log('    figures (shared, loaded machine):');
      for (const [k, v] of Object.entries(figures)) console.log(`      ${k}: ${v}`);
    }
    const left = [...problems];
    const netns = (await exec(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!);
    for (const n of netns) if (/^pgn/.test(n)) left.push(`netns ${n}`);
    assert.deepEqual(left, [], 'the access e2e left nothing behind');
  });

  it('bob (group a) reaches team-a by pod IP, ClusterIP and name, not team-b; carol the opposite; admin both', async () => {
    for (const [who, device] of [
      ['bob', 'laptop'],
      ['carol', 'laptop'],
      ['admin', 'desk'],
    ] as const) {
      clients[who] = connect(who, `${who}-${device}`, await profile(who, device));
    }
    for (const who of ['bob', 'carol', 'admin']) await waitClientConnected(clients[who]!, 90_000);
    const allowed = { bob: ['a'], carol: ['b'], admin: ['a', 'b'] } as const;
    for (const who of ['bob', 'carol', 'admin'] as const) {
      for (const t of ['a', 'b'] as const) {
        const ok = (allowed[who] as readonly string[]).includes(t);
        const what = `${who} → team-${t}`;
        if (ok) {
          await becomes(`${what} pod IP (first packet after connect)`, true, () => reach(who, team[t].pod));
          assert.ok(await reach(who, team[t].clusterIp), `${what} ClusterIP`);
          const name = `web.team-${t}.svc.cluster.local`;
          assert.equal(
            await dnsQuery(ns[who]!, CLUSTER_DNS_IP, name, 3000),
            team[t].clusterIp,
            `${what} DNS`,
          );
          assert.ok(await ping(who, team[t].pod), `${what} ping`);
        } else {
          assert.equal(await reach(who, team[t].pod), false, `${what} pod IP refused`);
          assert.equal(await reach(who, team[t].clusterIp), false, `${what} ClusterIP refused`);
          assert.equal(await ping(who, team[t].pod), false, `${what} ping refused`);
          // the name still resolves (DNS is always allowed); the address behind it does not answer
          assert.equal(
            await dnsQuery(ns[who]!, CLUSTER_DNS_IP, `web.team-${t}.svc.cluster.local`, 3000),
            team[t].clusterIp,
          );
        }
      }
    }
  });

  it("the refused packets are counted per replica: the pod's Lease and the manager's /metrics", async () => {
    // carol's and bob's refused connects and pings above hit the pod's drop rule; its agent reports the
    // nft counter in its replica Lease (at the heartbeat), the manager serves it per replica
    const config = loadConfig({ file: cfgFile });
    const ctx = await openContext(config, contextDepsFor(config));
    try {
      const metrics = createMetrics(ctx.store, undefined, () => new Date(), ctx, {
        cluster: clusterServiceFor(ctx),
      });
      const series = await until(
        'a replica to report its policy drops',
        async () => {
          const text = await metrics.registry.metrics();
          const m = /^podgate_access_replica_dropped_packets_total\{replica="([^"]+)"\} (\d+)$/m.exec(text);
          return m && Number(m[2]) > 0 ? { replica: m[1]!, dropped: Number(m[2]) } : undefined;
        },
        60_000,
        1000,
      );
      const pods = (
        await kubectl('-n', 'middleware', 'get', 'pods', '-l', 'app.kubernetes.io/component=openvpn', '-o', 'jsonpath={.items[*].metadata.name}')
      ).split(/\s+/); // prettier-ignore
      assert.ok(pods.includes(series.replica), `${series.replica} is a server pod: ${pods.join(' ')}`);
      figures['policy drops reported by the pod so far'] = String(series.dropped);
    } finally {
      await ctx.close();
    }
  });

  it('a new team-a pod is reachable by bob; a team-b pod given the address a deleted team-a pod had is not', async () => {
    await kubectlApply(teamPod('team-a', 'extra', 'a', images!.busybox.ref));
    const ip = await until(
      "the new pod's address",
      async () => (await podIp('team-a', 'extra')) || undefined,
      120_000,
    );
    const t0 = Date.now(); // the address is in the API from here on
    await becomes(
      'new team-a pod: address in the API → bob reaches it',
      true,
      () => reach('bob', ip, 80, 500),
      t0,
    );
    assert.equal(await reach('carol', ip), false, 'carol does not reach the new team-a pod');

    await kubectl('-n', 'team-a', 'delete', 'pod', 'extra', '--grace-period=0', '--force', '--wait=true');
    // host-local IPAM hands out the address after the last one it reserved: point it just before the
    // freed one so that the next pod gets it (the reuse a busy node does by itself sooner or later)
    const ipamDir = join(defaultRunDir(), 'cni', 'ipam', 'podgate-test');
    // the API object goes first; the kubelet's CNI DEL frees the address (host-local's file) after it
    await until(
      "the deleted pod's address to be freed by the CNI plugin",
      async () => !existsSync(join(ipamDir, ip)),
      60_000,
      200,
    );
    writeFileSync(join(ipamDir, 'last_reserved_ip.0'), intToIp(ipToInt(ip) - 1));
    const t1 = Date.now();
    await kubectlApply(teamPod('team-b', 'reuse', 'b', images!.busybox.ref));
    const reused = await until(
      "the team-b pod's address",
      async () => (await podIp('team-b', 'reuse')) || undefined,
      120_000,
    );
    assert.equal(reused, ip, "the team-b pod got the deleted team-a pod's address");
    await becomes(
      'reused address: team-b pod created → carol reaches it',
      true,
      () => reach('carol', ip, 80, 500),
      t1,
    );
    await staysDenied('bob must not reach the team-b pod on the old team-a address', () =>
      reach('bob', ip, 80, 500),
    );
  });

  it('bob removed from group a loses team-a on his live session', async () => {
    const connects = (clients.bob!.output().match(/Initialization Sequence Completed/g) ?? []).length;
    const t0 = Date.now();
    await podgate('group', 'member', 'remove', 'a', 'bob');
    await becomes(
      'group member removed → bob loses team-a (live session)',
      false,
      () => reach('bob', team.a.pod, 80, 500),
      t0,
    );
    assert.equal(
      (clients.bob!.output().match(/Initialization Sequence Completed/g) ?? []).length,
      connects,
      'the same session, no reconnect',
    );
    assert.ok(clients.bob!.running);
    assert.ok(await reach('admin', team.a.pod), 'admin still reaches team-a');
  });

  it('dave removed from group a at the identity provider loses team-a on his live session (single sign-on sync); a sign-in with it back restores it', async () => {
    // The company's identity provider (a real OpenID provider on loopback) and podgate's web app for the
    // sign-in (in this process, on a port of its own, with the cluster publishers of the manager): dave
    // signs in once with groups [a], which makes him a podgate user in single sign-on group a.
    const port = await reservePort();
    const callback = `${port.url}/auth/oidc/callback`;
    const idp = await startTestProvider({ redirectUris: [callback] });
    const secretFile = join(work, 'oidc-client-secret');
    writeFileSync(secretFile, 'podgate-test-client-secret\n', { mode: 0o600 });
    const ssoCfg = join(work, 'podgate-sso.yaml');
    writeFileSync(
      ssoCfg,
      readFileSync(cfgFile, 'utf8') +
        toYaml({
          auth: {
            oidc: {
              issuer: idp.issuer,
              clientId: 'podgate',
              clientSecretFile: secretFile,
              scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
              redirectUrl: callback,
            },
          },
        }),
    );
    const config = loadConfig({ file: ssoCfg });
    const ctx = await openContext(config, contextDepsFor(config));
    const stopTimers = startAccessTimers(ctx); // serve's: what another process changed goes out
    port.server.on('request', createApp({ ctx, oidc: openOidc(ctx) }));
    let dave: SpawnedProcess | undefined;
    try {
      idp.accounts.set('dave', { preferred_username: 'dave', email: 'dave@example.test', groups: ['a'] });
      const signIn = async () => {
        const jar = new Jar();
        const start = await step(jar, `${port.url}/auth/oidc/start?next=%2Fdevices`);
        assert.equal(start.status, 303, start.body.slice(0, 300));
        const back = await step(jar, await throughProvider(jar, start.location!, 'dave', callback));
        // podgate answers the callback with a page that moves on to `next` (its session cookie is set)
        assert.equal(back.status, 200, back.body.slice(0, 300));
        assert.match(back.body, /http-equiv="refresh" content="0;url=\/devices"/);
        assert.ok(jar.get(port.url, 'podgate_sid'), 'signed in: a session cookie');
      };
      await signIn();
      const ssoGroups = async () => {
        const user = await ctx.store.getUserByName('dave');
        assert.ok(user, 'the sign-in made dave a podgate user');
        return (await ctx.store.getOidcIdentityOfUser(user.id))?.groups;
      };
      assert.deepEqual(await ssoGroups(), ['a'], 'dave is in single sign-on group a');

      ns.dave = await createNamespace('pgndav');
      await attachToLan(ns.dave, 'eth0', '172.18.12.103/24', 'ld1');
      dave = connect('dave', 'dave-laptop', await profile('dave', 'laptop'));
      await waitClientConnected(dave, 90_000);
      await becomes('dave (SSO group a) → team-a pod IP after connect', true, () =>
        reach('dave', team.a.pod),
      );
      assert.equal(await reach('dave', team.b.pod), false, 'dave does not reach team-b');
      const connects = (dave.output().match(/Initialization Sequence Completed/g) ?? []).length;

      // the provider drops him from group a; the leaver check (`podgate user sync`, serve's timer runs
      // the same code) reads it with his refresh token and republishes the rules
      idp.accounts.set('dave', { preferred_username: 'dave', email: 'dave@example.test', groups: [] });
      const t0 = Date.now();
      const sync = await podgateWith(ssoCfg, 'user', 'sync');
      assert.match(sync.stdout, /^dave\s+ok/m, sync.stdout);
      await becomes(
        'SSO group removed (user sync) → dave loses team-a (live session)',
        false,
        () => reach('dave', team.a.pod, 80, 500),
        t0,
      );
      await staysDenied('dave must not reach team-a once out of group a', () =>
        reach('dave', team.a.pod, 80, 500),
      );
      assert.deepEqual(await ssoGroups(), [], 'the sync stored his groups');
      const audit = await ctx.store.listAudit({ action: 'oidc.groups', limit: 5 });
      assert.deepEqual(
        audit.find((r) => r.target === 'dave')?.details,
        { from: ['a'], to: [] },
        'the change is audited',
      );

      // back in group a at the provider; this time his own sign-in brings the change
      idp.accounts.set('dave', { preferred_username: 'dave', email: 'dave@example.test', groups: ['a'] });
      const t1 = Date.now();
      await signIn();
      await becomes(
        'SSO group back (sign-in) → dave reaches team-a again (live session)',
        true,
        () => reach('dave', team.a.pod, 80, 500),
        t1,
      );
      assert.equal(
        (dave.output().match(/Initialization Sequence Completed/g) ?? []).length,
        connects,
        'the same session throughout, no reconnect',
      );
    } finally {
      await dave?.stop(3000);
      stopTimers();
      await port.close();
      await idp.close();
      await ctx.close();
    }
  });

  it('the agent killed and restarted by the kubelet: nothing opens meanwhile', async () => {
    const restarts = async () =>
      Number(
        (
          await kubectl(
            '-n',
            'middleware',
            'get',
            'pods',
            '-o',
            'jsonpath={.items[0].status.containerStatuses[?(@.name=="agent")].restartCount}',
          )
        ).trim() || '0',
      );
    const before = await restarts();
    const pid = podProcess('podgate agent --cluster') ?? podProcess('agent --cluster');
    assert.ok(pid, 'the agent process');
    let probes = 0;
    let leaked = '';
    let done = false;
    const watcher = (async () => {
      while (!done) {
        for (const [who, host] of [
          ['bob', team.a.pod],
          ['carol', team.a.pod],
          ['carol', team.a.clusterIp],
        ] as const) {
          probes++;
          if (await reach(who, host, 80, 300)) leaked += `${who} → ${host}; `;
        }
      }
    })();
    process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    await until(
      'the kubelet to restart the agent',
      async () => (await restarts()) > before || undefined,
      120_000,
      500,
    );
    figures['agent killed → restarted by the kubelet'] = `${Date.now() - t0} ms`;
    await new Promise((r) => setTimeout(r, 5000)); // and while it lists, watches and re-applies
    done = true;
    await watcher;
    figures['probes of denied destinations during the agent restart'] = `${probes}, all refused`;
    assert.equal(leaked, '', `opened during the restart: ${leaked}`);
    await becomes('agent restarted → carol reaches team-b again', true, () => reach('carol', team.b.pod));
  });

  it('a disabled user is refused at connect while the CRL publisher is held back', async () => {
    const crl = async () =>
      (
        await kubectl('-n', 'middleware', 'get', 'secret', 'podgate-crl', '-o', 'jsonpath={.data.crl\\.pem}')
      ).trim();
    const text = await profile('carol', 'phone');
    // The disabling CLI may write the podgate-access Secret and nothing else: its CRL publication is
    // refused (403, audited), so what refuses carol's phone at the pod is the access bundle alone.
    await kubectlApply({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: 'podgate-no-crl', namespace: 'podgate' },
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name: 'podgate-access-only', namespace: 'middleware' },
          rules: [
            {
              apiGroups: [''],
              resources: ['secrets'],
              resourceNames: ['podgate-access'],
              verbs: ['get', 'patch'],
            },
          ],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'podgate-access-only', namespace: 'middleware' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'podgate-access-only' },
          subjects: [{ kind: 'ServiceAccount', name: 'podgate-no-crl', namespace: 'podgate' }],
        },
      ],
    });
    const heldKc = await serviceAccountKubeconfig(
      adminKc,
      'podgate',
      'podgate-no-crl',
      join(work, 'no-crl.kubeconfig'),
    );
    const heldCfg = join(work, 'podgate-no-crl.yaml');
    writeFileSync(heldCfg, readFileSync(cfgFile, 'utf8').replace(/kubeconfig: .*/, `kubeconfig: ${heldKc}`));
    const ccd = async () => {
      const pid = podProcess('agent --cluster');
      assert.ok(pid, 'the agent process');
      return (await exec(['nsenter', '-t', String(pid), '-m', 'ls', '/run/podgate/ccd'])).stdout.split('\n');
    };
    await until(
      "carol's phone in the pod's client-config-dir",
      async () => (await ccd()).includes('carol.phone'),
      30_000,
    );
    const crlBefore = await crl();
    const t0 = Date.now();
    await exec([process.execPath, CLI, '--config', heldCfg, 'user', 'disable', 'carol'], {
      timeoutMs: 120_000,
      env: { ...process.env, PODGATE_LOG_LEVEL: 'warn' },
    });
    await becomes(
      'user disabled → the pod drops her devices',
      false,
      async () => (await ccd()).includes('carol.phone'),
      t0,
    );
    const c = connect('carol', 'carol-phone', text);
    await until('the refusal', async () => /AUTH_FAILED/.test(c.output()), 60_000, 200);
    assert.doesNotMatch(
      c.output(),
      /Initialization Sequence Completed/,
      "the disabled user's new session never completes",
    );
    await c.stop(3000);
    assert.equal(await crl(), crlBefore, 'the CRL in the pod is the one before the disable');
    assert.ok(
      JSON.parse((await podgate('--json', 'user', 'list')).stdout).some(
        (u: { name: string; disabled: boolean }) => u.name === 'carol' && u.disabled,
      ),
      'carol is disabled',
    );
  });

  it('enforce with the API server unreachable from the pod at its start: only DNS', async () => {
    const state = JSON.parse(readFileSync(join(defaultRunDir(), 'state.json'), 'utf8')) as {
      apiPort: number;
    };
    // pods reach the API server through kube-proxy to the relay at NODE_IP:apiPort; the kubelet does not
    const rule = [
      'INPUT',
      '-s',
      '10.244.0.0/16',
      '-d',
      NODE_IP,
      '-p',
      'tcp',
      '--dport',
      String(state.apiPort),
      '-j',
      'DROP',
    ];
    const oldAgent = podProcess('agent --cluster');
    await exec(['ip', 'netns', 'exec', NODE_NETNS, 'iptables', '-w', '-I', ...rule]);
    try {
      const old = (
        await kubectl('-n', 'middleware', 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}')
      ).trim();
      await kubectl('-n', 'middleware', 'delete', 'pod', old, '--wait=false');
      const agent = await until(
        "the new server pod's agent",
        async () => {
          const pid = podProcess('agent --cluster');
          return pid !== undefined && pid !== oldAgent ? pid : undefined;
        },
        180_000,
        500,
      );
      // the openvpn container's start script or the agent installs it, whichever comes first
      const table = await until(
        "the new pod's table",
        async () => {
          const t = await podTable(agent);
          return t.startsWith('table') ? t : undefined;
        },
        60_000,
        500,
      );
      assert.match(table, /udp dport 53 accept|th dport 53 accept/, table);
      assert.match(table, /counter name "?dropped"? drop/, table);
      assert.doesNotMatch(table, /^\s*accept$/m, 'not the open table (a bare accept)');
      assert.doesNotMatch(
        table,
        new RegExp(team.a.pod.replace(/\./g, '\\.')),
        'no team-a address in the table',
      );
      // Without the API server the agent verifies no CRL, so openvpn does not even start (its start
      // script waits for that file): nobody connects, and the admin's client, whose server went with
      // the old pod, reaches nothing meanwhile.
      await staysDenied('admin reaches nothing while the API server is unreachable', () =>
        reach('admin', team.a.pod, 80, 500),
      );
      const ready = await kubectl(
        '-n',
        'middleware',
        'get',
        'pods',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[?(@.name=="openvpn")].ready}{"\\n"}{end}',
      );
      assert.ok(
        ready.split('\n').every((l) => l.startsWith(old) || !/ true$/.test(l.trim())),
        `no new openvpn is ready without a verified CRL: ${ready}`,
      );
      figures['API unreachable at pod start'] = 'DNS-only table, openvpn waits for a verified CRL';
    } finally {
      await exec(['ip', 'netns', 'exec', NODE_NETNS, 'iptables', '-w', '-D', ...rule], { check: false });
    }
    // the admin's client notices its server went away at its ping-restart, then reconnects
    await becomes(
      'API reachable again → admin reaches team-a',
      true,
      () => reach('admin', team.a.pod, 80, 500),
      Date.now(),
      240_000,
    );
  });

  it('the office gateway with a rule for team-a only: a LAN host reaches team-a, not team-b', async () => {
    const LAN = { host: '192.168.77.10', gw: '192.168.77.1', cidr: '192.168.77.0/24' };
    const gw = await createNamespace('pgngw');
    await attachToLan(gw, 'eth0', '172.18.12.103/24', 'lg1');
    const lan = await createNamespace('pgnlan');
    await addVeth(lan, 'eth0', gw, 'eth1');
    await addAddress(lan, 'eth0', `${LAN.host}/24`);
    await addAddress(gw, 'eth1', `${LAN.gw}/24`);
    await addRoute(lan, '10.244.0.0/16', { gateway: LAN.gw });
    await addRoute(lan, '10.96.0.0/12', { gateway: LAN.gw });
    for (const sub of ['openvpn', 'sysctl.d']) mkdirSync(join('/etc/netns', gw, sub), { recursive: true });
    leftovers.push(join('/etc/netns', gw));
    const key = await makeKey(work, 'gw-admin-key');
    const sshd = await startSshd({ ns: gw, dir: join(work, 'sshd') });
    sshd.authorize('root', key.publicKey);
    const name = `office-${Date.now().toString(36)}`;
    leftovers.push(`/run/podgate-gw/${name}`);
    const lanCfg = join(work, 'lan.yaml');
    // The rule names the gateway before it exists: its device is in the rule from the moment the
    // certificate step issues it (the gateway record names the serial only when provisioning ends).
    const t0 = Date.now();
    await applyRules([
      {
        name: 'office-team-a',
        subjects: [{ kind: 'gateway', name }],
        destinations: [{ kind: 'namespace', names: ['team-a'] }],
      },
    ]);
    // The CLI on the lan host reaches gw's sshd, not the API server (no route from there): the manager
    // publishes the access bundle with the gateway's new device, as `serve`'s access timers do.
    const config = loadConfig({ file: cfgFile });
    const ctx = await openContext(config, contextDepsFor(config));
    const stopAccess = startAccessTimers(ctx);
    writeFileSync(lanCfg, [`dataDir: ${join(work, 'data')}`, `vpn: { port: ${NODE_PORT} }`, ''].join('\n'));
    try {
      const r = await runIn(
        lan,
        [
          process.execPath,
          CLI,
          '--config',
          lanCfg,
          'gateway',
          'provision',
          `root@${LAN.gw}`,
          '--identity',
          key.privateKeyFile,
          '--name',
          name,
          '--lan',
          LAN.cidr,
          '--accept-new-host-key',
          '--service',
          'daemon',
        ],
        { check: false, timeoutMs: 180_000, env: { ...process.env, PODGATE_LOG_LEVEL: 'warn' } },
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      await becomes(
        'gateway rule + provision → LAN host reaches team-a',
        true,
        () => tcpConnects(lan, team.a.pod, 80, 500),
        t0,
      );
      assert.ok(await tcpConnects(lan, team.a.clusterIp, 80, 1500), 'team-a ClusterIP through the gateway');
      await staysDenied('the LAN must not reach team-b', () => tcpConnects(lan, team.b.pod, 80, 500));
      assert.equal(
        await tcpConnects(lan, team.b.clusterIp, 80, 1500),
        false,
        'team-b ClusterIP through the gateway',
      );
    } finally {
      stopAccess();
      await ctx.close();
      await sshd.stop();
    }
  });
});
