/**
 * The whole product on real Kubernetes, once: the control plane built from upstream, a real node (kubelet,
 * containerd, kube-proxy in iptables mode, CNI bridge) in its own network namespace at 172.18.12.21,
 * CoreDNS as the cluster DNS, and the images built here from the project's Dockerfile.
 *
 *   office (172.18.12.100) ─┐
 *   office2 (172.18.12.101) ├─ lan0 ── node 172.18.12.21 ── cni0 ── pods 10.244.1.0/24 (web, openvpn, dns)
 *   rv1..rv5 (172.18.12.11x) ┘
 *
 * `podgate k8s discover` and `podgate k8s deploy` run as the manager's own ServiceAccount (k8s/ RBAC);
 * profiles come from the web API; Debian's openvpn dials 172.18.12.21:30030 through kube-proxy's NodePort
 * and reaches a pod IP, a ClusterIP and `web.default.svc.cluster.local` through the pushed DNS. An admin
 * revoke in the web app changes the podgate-crl Secret and the agent sidecar cuts the client; a second
 * client stays up; a deleted server pod comes back and the revocation holds. Then the manager itself runs
 * in the cluster, installed twice the ways a user would (`kubectl apply -k k8s/`, then `helm install` of
 * charts/podgate on a cluster the first left): each serves on its Service, deploys the server and its
 * revoke cuts a client (test/cluster/node/in-cluster-manager.ts holds the steps both take).
 *
 * Timings (deploy → Ready, connect, revoke → cut) are printed, never asserted.
 */
import assert from 'node:assert/strict';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
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
import { startAccessTimers } from '../../src/services/access-timers.js';
import { createApp } from '../../src/web/app.js';
import { clusterServiceFor } from '../../src/cluster/index.js';
import { UsageService } from '../../src/services/usage.js';
import {
  addAddress,
  addRoute,
  addVeth,
  cleanupAll,
  createNamespace,
  dnsQuery,
  officeNodePod,
  runIn,
  OFFICE_NODE_POD,
  type SpawnedProcess,
} from '../helpers/netns.js';
import { startClient, waitClientConnected } from '../helpers/openvpn.js';
import { attachToLan, NODE_IP, NODE_NETNS } from '../cluster/node/node.js';
import { writeManagerOverlay } from '../cluster/node/manager-overlay.js';
import {
  deployFromManager,
  fetchIn,
  managerSocket,
  newDevice,
  openManagerApi,
  revokeCutsClient,
  until,
  waitManagerRollout,
} from '../cluster/node/in-cluster-manager.js';
import { requireBinaries } from '../cluster/binaries.js';
import { gatewayLayout } from '../../src/gateway/layout.js';
import { makeKey, startSshd } from '../helpers/sshd.js';
import { CLUSTER_DNS_IP } from '../cluster/node/with-node.js';
import { claimRealNode, startRealNode, stopRealNode } from '../cluster/node/real-node-run.js';
import type { ControlPlane } from '../cluster/control-plane.js';
import { webWorkload, managerKubeconfig } from '../cluster/node/workloads.js';
import { kubectlBin } from '../cluster/node/paths.js';
import { kubectlSlices, waitForService } from '../cluster/node/service-ready.js';

const CLI = join(process.cwd(), 'dist/bundle/podgate.js');
const REPO = process.cwd();
const NODE_PORT = 30030;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

describe('e2e: podgate on a real Kubernetes node (kubelet + containerd + kube-proxy in a netns)', function () {
  this.timeout(30 * 60_000);
  let cp: ControlPlane | undefined;
  let work: string;
  let cfgFile: string;
  let adminKc: string;
  let ctx: AppContext;
  let agent: ReturnType<typeof request.agent>;
  let csrf: string;
  const ns: Record<string, string> = {};
  const clients: SpawnedProcess[] = [];
  let keeper: SpawnedProcess;
  const web = { podIp: '', clusterIp: '' };
  const figures: Record<string, string> = {};
  let podgateImage = '';
  let locked = false;
  /** Per-namespace /etc dirs (`ip netns exec` bind-mounts them) and gateway run dirs to remove. */
  const leftovers: string[] = [];

  const kubectl = async (...args: string[]) =>
    (await exec([kubectlBin(), '--kubeconfig', adminKc, ...args], { timeoutMs: 120_000 })).stdout;
  const podgate = (...args: string[]) =>
    exec([process.execPath, CLI, '--config', cfgFile, ...args], { timeoutMs: 10 * 60_000 });

  /** An HTTP GET from inside a namespace (Node's fetch; Debian's static busybox wget crashes here). */
  const wget = fetchIn;

  const newProfile = (device: string) => newDeviceProfile(agent, csrf, device);

  /** A client; `--hand-window 10` so that a refused handshake shows within seconds, not after 60 s. */
  function connect(nsName: string, name: string, profile: string): SpawnedProcess {
    const p = startClient(nsName, work, `${name}-${Date.now()}`, profile, [
      '--connect-retry',
      '1',
      '1',
      '--hand-window',
      '10',
    ]);
    clients.push(p);
    return p;
  }

  /** A client with `profile` in `netns` is refused by the server pod (its CRL): the handshake never completes. */
  async function refusedHandshake(netns: string, name: string, profile: string): Promise<void> {
    const again = connect(netns, name, profile);
    await until(
      `the refused handshake of ${name}`,
      async () =>
        /TLS Error|AUTH_FAILED|TLS handshake failed|TLS key negotiation failed/.test(again.output()) ||
        undefined,
      60_000,
    );
    assert.doesNotMatch(again.output(), /Initialization Sequence Completed/);
    await again.stop(3000);
  }

  before(async function () {
    // on a fresh machine this builds CoreDNS and the images first (debootstrap, apt-get and npm ci inside
    // buildah): tens of minutes once, then cached by content hash
    this.timeout(90 * 60_000);
    await claimRealNode(this, 'the real-node e2e (test/e2e/k8s-node.test.ts)');
    locked = true;
    work = mkdtempSync(join(tmpdir(), 'pg-k8s-node-'));
    // the control plane with this node instead of registered Node objects and the kubelet simulator
    const run = await startRealNode(REPO, work);
    cp = run.cp;
    adminKc = run.adminKc;
    const node = { images: run.images };
    podgateImage = node.images.podgate.ref;
    Object.assign(figures, run.figures);

    for (const [role, addr] of [
      ['office', '172.18.12.100'],
      ['office2', '172.18.12.101'],
    ] as const) {
      ns[role] = await createNamespace(`pgn${role}`);
      await attachToLan(ns[role], 'eth0', `${addr}/24`, `l${role.slice(-1) === '2' ? 'o2' : 'o1'}`);
    }

    // the workload: busybox httpd behind Service `web` in default
    await exec([kubectlBin(), '--kubeconfig', adminKc, 'apply', '-f', '-'], {
      input: JSON.stringify(webWorkload(node.images.busybox.ref)),
    });
    await kubectl('rollout', 'status', 'deployment/web', '--timeout=180s');
    web.podIp = (
      await kubectl('get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].status.podIP}')
    ).trim();
    web.clusterIp = (await kubectl('get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}')).trim();
    // a fresh Service: its endpoints published and kube-proxy's rules in place before anyone dials it
    await waitForService({
      service: 'default/web',
      slices: kubectlSlices(kubectlBin(), adminKc, 'default', 'web'),
      probe: async () => {
        const text = await wget(NODE_NETNS, `http://${web.clusterIp}/`);
        return text && /hello from web/.test(text) ? text : undefined;
      },
    });

    // the manager's own ServiceAccount and RBAC from k8s/, and a kubeconfig with its token
    const managerKc = await managerKubeconfig(REPO, adminKc, work);
    writeFileSync(join(work, 'admin.pw'), 'admin-password-for-tests\n', { mode: 0o600 });
    cfgFile = join(work, 'podgate.yaml');
    writeFileSync(
      cfgFile,
      [
        `dataDir: ${join(work, 'data')}`,
        'kubernetes:',
        `  kubeconfig: ${managerKc}`,
        `  image: ${node.images.podgate.ref}`,
        `  nodePort: ${NODE_PORT}`,
        // the pod's agent reports session readings every 2 s (the manager's history, checked below)
        'sessions: { recordEverySeconds: 2 }',
        '',
      ].join('\n'),
    );
    await exec([process.execPath, CLI, '--config', cfgFile, 'init'], {
      env: { ...process.env, PODGATE_ADMIN_PASSWORD_FILE: join(work, 'admin.pw') },
    });
  });

  after(async function () {
    this.timeout(5 * 60_000);
    for (const c of clients) await c.stop(3000).catch(() => undefined);
    await ctx?.close();
    await cleanupAll();
    for (const d of leftovers) rmSync(d, { recursive: true, force: true });
    try {
      rmdirSync('/run/podgate-gw'); // only when empty: other gateways may live there
    } catch {
      /* not empty or already gone */
    }
    if (!locked) return; // another run has the node: nothing here is ours
    const problems = await stopRealNode(cp);
    if (work) rmSync(work, { recursive: true, force: true });
    if (Object.keys(figures).length) {
      console.log('    figures:');
      for (const [k, v] of Object.entries(figures)) console.log(`      ${k}: ${v}`);
    }
    // nothing may outlive the run, whether its tests passed or not
    const left = [...problems];
    for (const d of [...leftovers, work].filter(Boolean)) if (existsSync(d)) left.push(`dir ${d}`);
    // every namespace this suite makes is named pgn* (office, office2, rv1..5, gw, lan) or pgq<role>-* (iperf)
    const netns = (await exec(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!);
    for (const n of netns) if (/^pgn|^pgq(off|nod|pod)-/.test(n)) left.push(`netns ${n}`);
    assert.deepEqual(left, [], 'the real-node run left nothing behind');
  });

  it('k8s discover reads the real node, pod and service ranges and kube-dns', async () => {
    const d = JSON.parse((await podgate('k8s', 'discover', '--json')).stdout) as Record<string, unknown>;
    const text = JSON.stringify(d);
    assert.ok(text.includes(NODE_IP), `node InternalIP discovered: ${text}`);
    assert.ok(text.includes(CLUSTER_DNS_IP), `kube-dns ClusterIP discovered: ${text}`);
    assert.ok(text.includes('10.244.'), `pod range discovered: ${text}`);
  });

  it('k8s deploy (as podgate-manager) rolls the OpenVPN server out Ready on the real node', async () => {
    const t0 = Date.now();
    const out = (await podgate('k8s', 'deploy')).stdout;
    figures['k8s deploy → Ready'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    assert.match(out, /rollout ready/);
    const ready = await kubectl(
      '-n',
      'middleware',
      'get',
      'pods',
      '-o',
      'jsonpath={.items[*].status.containerStatuses[*].ready}',
    );
    assert.deepEqual(
      ready.trim().split(/\s+/),
      ['true', 'true'],
      'both containers of the server pod are ready',
    );
    const svc = await kubectl(
      '-n',
      'middleware',
      'get',
      'service',
      '-o',
      'jsonpath={.items[*].spec.ports[*].nodePort}',
    );
    assert.ok(svc.split(/\s+/).includes(String(NODE_PORT)), `NodePort ${NODE_PORT}: ${svc}`);
    // the NodePort is dialled next (UDP: no probe here, openvpn retries): wait for its ready endpoint
    await waitForService({
      service: 'middleware/podgate-openvpn',
      slices: kubectlSlices(kubectlBin(), adminKc, 'middleware', 'podgate-openvpn'),
    });
  });

  it('a profile from the web API dials the NodePort and reaches a pod IP, a ClusterIP and a service name', async () => {
    const config = loadConfig({ file: cfgFile });
    ctx = await openContext(config, contextDepsFor(config));
    agent = request.agent(createApp({ ctx }));
    const login = await agent
      .post('/api/v1/login')
      .send({ name: 'admin', password: 'admin-password-for-tests' });
    assert.equal(login.status, 200, login.text);
    csrf = (login.body as { csrfToken: string }).csrfToken;

    const { profile } = await newProfile('laptop');
    assert.match(profile, new RegExp(`^remote ${NODE_IP.replace(/\./g, '\\.')} ${NODE_PORT}`, 'm'));
    const t0 = Date.now();
    const c = connect(ns.office!, 'laptop', profile);
    await waitClientConnected(c, 60_000);
    figures['client connect (start → Initialization Sequence Completed)'] = `${Date.now() - t0} ms`;

    assert.match((await wget(ns.office!, `http://${web.podIp}/`)) ?? '', /hello from web/, 'pod IP');
    assert.match((await wget(ns.office!, `http://${web.clusterIp}/`)) ?? '', /hello from web/, 'ClusterIP');
    const reply = /PUSH_REPLY,([^']*)'/.exec(c.output())?.[1] ?? '';
    const dns = /dhcp-option DNS ([\d.]+)/.exec(reply)?.[1];
    assert.equal(dns, CLUSTER_DNS_IP, `pushed DNS server: ${reply}`);
    const resolved = await dnsQuery(ns.office!, dns, 'web.default.svc.cluster.local', 3000);
    assert.equal(resolved, web.clusterIp, 'CoreDNS answers the service name through the tunnel');
    assert.match((await wget(ns.office!, `http://${resolved}/`)) ?? '', /hello from web/, 'service by name');

    // "Check my connection": the agent beside openvpn answers on the server pod's IP through the tunnel
    const serverPodIp = (
      await kubectl(
        '-n',
        'middleware',
        'get',
        'pods',
        '-l',
        'app.kubernetes.io/component=openvpn',
        '-o',
        'jsonpath={.items[0].status.podIP}',
      )
    ).trim();
    const nonce = 'real-node-nonce-0123456789';
    const probe = await wget(ns.office!, `http://${serverPodIp}:8099/connection-probe?nonce=${nonce}`);
    assert.deepEqual(JSON.parse(probe ?? 'null'), { podgate: 'reachable', nonce }, 'probe on the pod IP');

    // the agent's session readings reach the manager's history (replica pod/<server pod>)
    const history = clusterServiceFor(ctx, new UsageService(ctx.store, () => new Date()));
    const recorded = async () =>
      (await ctx.store.listSessionHistory({ user: 'admin' })).find(
        (r) => r.commonName === 'admin.laptop' && r.replica.startsWith('pod/'),
      );
    await until(
      'the pod agent to report the session',
      async () => {
        await history.syncSessions();
        return recorded();
      },
      30_000,
    );
    const row = (await recorded())!;
    assert.equal(row.endedAt, null);
    assert.match(row.virtualAddress, /^10\.140\./);
  });

  it('an admin revoke in the web app cuts the client through the agent sidecar; reconnect refused; others stay', async () => {
    const second = await newProfile('desktop');
    keeper = connect(ns.office2!, 'desktop', second.profile);
    await waitClientConnected(keeper, 60_000);

    const cuts: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const rv = await createNamespace(`pgnrv${i}`);
      await attachToLan(rv, 'eth0', `172.18.12.${110 + i}/24`, `lr${i}`);
      const { profile, serial } = await newProfile(`phone${i}`);
      if (i === 1) writeFileSync(join(work, 'phone1-revoked.ovpn.keep'), profile, { mode: 0o600 });
      const c = connect(rv, `phone${i}`, profile);
      await waitClientConnected(c, 60_000);
      const t0 = Date.now();
      const res = await agent
        .post(`/api/v1/certs/${serial}/revoke`)
        .set('X-CSRF-Token', csrf)
        .send({ reason: 'keyCompromise' });
      assert.equal(res.status, 200, res.text);
      await until(
        'the client to be cut',
        async () => /server-pushed-halt|SIGTERM|exiting/i.test(c.output()) || !c.running || undefined,
        60_000,
        20,
      );
      cuts.push(Date.now() - t0);
      if (i === 1) {
        // a reconnect with the revoked certificate is refused by the server (CRL in the pod)
        await refusedHandshake(rv, 'phone1-again', profile);
      }
    }
    figures['revoke → cut (5 runs)'] =
      `median ${median(cuts)} ms, worst ${Math.max(...cuts)} ms (${cuts.join(', ')})`;
    const secret = await kubectl(
      '-n',
      'middleware',
      'get',
      'secret',
      'podgate-crl',
      '-o',
      'jsonpath={.data}',
    );
    assert.ok(secret.length > 0, 'podgate-crl Secret holds the CRL');
    assert.ok(keeper.running, 'second client still connected');
    assert.match(
      (await wget(ns.office2!, `http://${web.podIp}/`)) ?? '',
      /hello from web/,
      'second client still reaches the pod',
    );
  });

  it('a deleted server pod comes back, the second client reconnects by itself, the revocation holds', async () => {
    const before = (keeper.output().match(/Initialization Sequence Completed/g) ?? []).length;
    const old = (
      await kubectl('-n', 'middleware', 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}')
    ).trim();
    await kubectl('-n', 'middleware', 'delete', 'pod', old, '--wait=false');
    await until(
      'a new Ready server pod',
      async () => {
        const out = await kubectl(
          '-n',
          'middleware',
          'get',
          'pods',
          '-o',
          'jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[*].ready}{"\\n"}{end}',
        );
        return out.split('\n').some((l) => !l.startsWith(old) && /true true$/.test(l.trim())) || undefined;
      },
      180_000,
      1000,
    );
    await until(
      'the second client to reconnect',
      async () =>
        (keeper.output().match(/Initialization Sequence Completed/g) ?? []).length > before || undefined,
      180_000,
      500,
    );
    assert.match(
      (await wget(ns.office2!, `http://${web.podIp}/`)) ?? '',
      /hello from web/,
      'reconnected client reaches the pod',
    );
    const revoked = readFileSync(join(work, 'phone1-revoked.ovpn.keep'), 'utf8');
    await refusedHandshake(ns.office!, 'phone1-after-restart', revoked);
  });

  it('figures: iperf3 single TCP stream office → pod through the pod server, and through `podgate server run`', async () => {
    const iperf = async (nsName: string, host: string): Promise<number> => {
      const r = await runIn(nsName, ['iperf3', '-c', host, '-t', '5', '-J'], {
        timeoutMs: 60_000,
        check: false,
      });
      const j = JSON.parse(r.stdout) as {
        error?: string;
        end?: { sum_received?: { bits_per_second: number } };
      };
      assert.ok(j.end?.sum_received, `iperf3 to ${host}: ${j.error ?? r.stderr}`);
      return j.end.sum_received.bits_per_second / 1e6;
    };
    const viaPod = await iperf(ns.office2!, web.podIp);
    assert.ok(viaPod > 0, 'iperf3 through the pod server moved data');
    figures['iperf3 office → pod, server in the real pod'] = `${viaPod.toFixed(0)} Mbit/s`;

    // the same measure against `podgate server run` in namespaces (office ─ node ─ pod, no Kubernetes)
    const topo = await officeNodePod({ prefix: 'pgq', clusterIp: false });
    const localCfg = join(work, 'local.yaml');
    writeFileSync(
      localCfg,
      [
        `dataDir: ${join(work, 'data')}`,
        'vpn:',
        `  port: ${NODE_PORT}`,
        `  endpoints: ["${OFFICE_NODE_POD.node}"]`,
        `  routes: { pods: ["${OFFICE_NODE_POD.podCidr}"] }`,
        '  nat: true',
        '',
      ].join('\n'),
    );
    const out = join(work, 'bench.ovpn');
    await exec([
      process.execPath,
      CLI,
      '--config',
      localCfg,
      'cert',
      'issue',
      'bench',
      '--owner',
      'admin',
      '--out',
      out,
    ]);
    const server = topo.spawn('node', [process.execPath, CLI, '--config', localCfg, 'server', 'run'], {
      logFile: join(work, 'server-run.log'),
    });
    try {
      await server.waitFor(/Initialization Sequence Completed/, 60_000);
      topo.spawn('pod', ['iperf3', '-s', '-p', '5201']);
      const c = connect(topo.name('office'), 'bench', readFileSync(out, 'utf8'));
      await waitClientConnected(c, 60_000);
      const local = await iperf(topo.name('office'), OFFICE_NODE_POD.pod);
      assert.ok(local > 0, 'iperf3 through `server run` moved data');
      figures['iperf3 office → pod, `podgate server run` in namespaces'] = `${local.toFixed(0)} Mbit/s`;
      await c.stop(3000);
    } finally {
      await server.stop(8000);
      await topo.destroy();
    }
  });
  it('the office gateway: a lan host without a VPN client reaches a pod IP and a ClusterIP through gw → NodePort → the real pod', async () => {
    // lan 192.168.77.10 ── 192.168.77.1 gw 172.18.12.102 ── lan0 of the node ── NodePort 30030 ── server pod
    const LAN = { host: '192.168.77.10', gw: '192.168.77.1', cidr: '192.168.77.0/24' };
    const gw = await createNamespace('pgngw');
    await attachToLan(gw, 'eth0', '172.18.12.102/24', 'lg1');
    const lan = await createNamespace('pgnlan');
    await addVeth(lan, 'eth0', gw, 'eth1');
    await addAddress(lan, 'eth0', `${LAN.host}/24`);
    await addAddress(gw, 'eth1', `${LAN.gw}/24`);
    // an office router's static routes: the cluster ranges via gw
    await addRoute(lan, '10.244.0.0/16', { gateway: LAN.gw });
    await addRoute(lan, '10.96.0.0/12', { gateway: LAN.gw });
    for (const sub of ['openvpn', 'sysctl.d']) mkdirSync(join('/etc/netns', gw, sub), { recursive: true });
    leftovers.push(join('/etc/netns', gw));
    const key = await makeKey(work, 'gw-admin-key');
    const sshd = await startSshd({ ns: gw, dir: join(work, 'sshd') });
    sshd.authorize('root', key.publicKey);
    const name = `office-${Date.now().toString(36)}`;
    const layout = gatewayLayout(name);
    leftovers.push(`/run/podgate-gw/${name}`);

    // the CLI runs on the lan host (it reaches gw's sshd from there), on the manager's data dir: the CA the
    // server pod trusts and the network discovered from the cluster (endpoint 172.18.12.21:30030, pod and
    // service ranges). Its loopback has no API server, so this config names no kubeconfig.
    const lanCfg = join(work, 'lan.yaml');
    writeFileSync(lanCfg, [`dataDir: ${join(work, 'data')}`, `vpn: { port: ${NODE_PORT} }`, ''].join('\n'));
    const cli = (args: string[]) =>
      runIn(lan, [process.execPath, CLI, '--config', lanCfg, ...args], {
        check: false,
        timeoutMs: 180_000,
        env: { ...process.env, PODGATE_LOG_LEVEL: 'warn' },
      });

    assert.equal(await wget(lan, `http://${web.podIp}/`), undefined, 'no way to the pod before provisioning');
    // The lan host's CLI cannot reach the API server, so the new gateway device reaches the server pod's
    // access bundle the way it does in production: the manager (serve's timers, here on the test's
    // context with the cluster publishers) publishes what another process changed within a second.
    const stopAccess = startAccessTimers(ctx);
    // New installs enforce access rules, and a person's rules never open a gateway: this gateway gets its
    // own rule (everything; narrower gateway rules are the access e2e's subject). It names the gateway
    // before it exists: its device is in the rule from the moment its certificate is issued, so the
    // LAN reaches the pod as soon as provisioning ends.
    const rulesFile = join(work, 'rules.yaml');
    writeFileSync(
      rulesFile,
      [
        'rules:',
        '  - name: admins-everything',
        '    subjects: [{ kind: group, name: admins }]',
        '    destinations: [{ kind: cidr, cidr: 0.0.0.0/0 }]',
        `  - name: ${name}-everything`,
        `    subjects: [{ kind: gateway, name: ${name} }]`,
        '    destinations: [{ kind: cidr, cidr: 0.0.0.0/0 }]',
        '',
      ].join('\n'),
    );
    const applied = await cli(['access', 'apply', '-f', rulesFile]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const r = await cli([
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
      '--wait',
      '60',
    ]);
    stopAccess();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const step of ['certificate', 'profile', 'forwarding', 'nat', 'service', 'tunnel', 'route'])
      assert.match(r.stdout, new RegExp(`^\\[${step}\\] .* \\.\\.\\. changed$`, 'm'));
    assert.match(
      r.stdout,
      new RegExp(`^\\[route\\] 10\\.244\\.\\d+\\.\\d+ via 10\\.140\\.\\d+\\.\\d+ dev ${layout.dev}`, 'm'),
    );
    assert.match((await wget(lan, `http://${web.podIp}/`)) ?? '', /hello from web/, 'pod IP through gw');
    assert.match(
      (await wget(lan, `http://${web.clusterIp}/`)) ?? '',
      /hello from web/,
      'ClusterIP through gw',
    );

    const st = await cli(['--json', 'gateway', 'status', name]);
    assert.equal(st.code, 0, st.stderr);
    const status = JSON.parse(st.stdout) as {
      tunnel: { up: boolean };
      routes: string[];
      recordStatus: string;
    };
    assert.equal(status.recordStatus, 'ready');
    assert.equal(status.tunnel.up, true);
    assert.ok(
      status.routes.some((l) => l.startsWith('10.96.')),
      `service range pushed by the pod server: ${status.routes.join('\n')}`,
    );

    const rm = await cli(['gateway', 'remove', name]);
    assert.equal(rm.code, 0, rm.stdout + rm.stderr);
    assert.match(
      rm.stdout,
      new RegExp(`^\\[certificate\\] ${layout.commonName} serial [0-9A-F]+ revoked`, 'm'),
    );
    assert.equal(await wget(lan, `http://${web.podIp}/`), undefined, 'the pod is out of reach after remove');
    await sshd.stop();
  });

  it('kubectl apply -k k8s/ runs the manager in the cluster: serve answers on its Service, deploys, and its revoke reaches podgate-crl and cuts a client', async () => {
    // the first admin's password, as k8s/README.md asks before the first start
    await kubectl(
      '-n',
      'podgate',
      'create',
      'secret',
      'generic',
      'podgate-admin',
      '--from-literal=password=in-cluster admin password 1',
    );
    const overlay = writeManagerOverlay(join(work, 'manager-overlay'), REPO, podgateImage);
    const t0 = Date.now();
    await kubectl('apply', '-k', overlay);
    await waitManagerRollout(adminKc, 'podgate');
    figures['manager: kubectl apply -k → Ready'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const api = await openManagerApi({
      adminKc,
      namespace: 'podgate',
      socket: managerSocket(work, 'manager'),
      password: 'in-cluster admin password 1',
    });

    // The manager deploys the OpenVPN server from inside its pod. Its CA is not the one the first
    // (outside) manager deployed with: a plain deploy is refused naming the owner annotation, and the
    // take-over replaces it deliberately.
    const refused = await deployFromManager(api);
    assert.equal(refused.state, 'failed');
    assert.match(refused.error ?? '', /podgate\.io\/ca-key-id=.*--take-over/s);
    const t1 = Date.now();
    const deploy = await deployFromManager(api, { takeOver: true });
    assert.equal(deploy.state, 'done', `${deploy.error}\n${deploy.events.map((e) => e.message).join('\n')}`);
    figures['in-cluster deploy (web API) → done'] = `${((Date.now() - t1) / 1000).toFixed(1)} s`;

    const cert = await newDevice(api, 'tablet');
    assert.equal(cert.commonName, 'admin.tablet');
    // a host of its own on the office LAN (the earlier clients' tunnels, refused by the new CA, stay in theirs)
    const tab = await createNamespace('pgntab');
    await attachToLan(tab, 'eth0', '172.18.12.120/24', 'lt1');
    const c = connect(tab, 'tablet', cert.profile);
    await waitClientConnected(c, 120_000);
    assert.match((await wget(tab, `http://${web.podIp}/`)) ?? '', /hello from web/, 'tablet reaches the pod');

    const ms = await revokeCutsClient({
      api,
      adminKc,
      managerNamespace: 'podgate',
      serverNamespace: 'middleware',
      serial: cert.serial,
      client: c,
    });
    figures['in-cluster manager: revoke → cut'] = `${ms} ms`;
    await api.stop();
  });

  it('helm install charts/podgate runs the manager in the cluster: serve answers on its Service, deploys, and its revoke reaches podgate-crl and cuts a client', async () => {
    // The chart owns the same fixed names as the k8s/ base (cluster-wide RBAC, namespaces podgate and
    // middleware): what the base put here (the outside manager's RBAC, the kustomize manager above and the
    // server it deployed) leaves first, so the chart installs as on a cluster that never had podgate.
    const overlay = writeManagerOverlay(join(work, 'manager-overlay'), REPO, podgateImage);
    await exec(
      [kubectlBin(), '--kubeconfig', adminKc, 'delete', '-k', overlay, '--ignore-not-found', '--wait', '--timeout=300s'],
      { timeoutMs: 320_000 },
    ); // prettier-ignore
    for (const n of ['podgate', 'middleware'])
      await until(
        `namespace ${n} gone`,
        async () => (await kubectl('get', 'namespace', n, '--ignore-not-found', '-o', 'name')).trim() === '' || undefined,
        300_000,
        1000,
      ); // prettier-ignore

    // the release namespace and the first admin's password before the install, as values.yaml asks
    await kubectl('create', 'namespace', 'podgate');
    await kubectl(
      '-n',
      'podgate',
      'create',
      'secret',
      'generic',
      'podgate-admin',
      '--from-literal=password=helm admin password 2',
    );
    // The node has no storage provisioner: the chart's claim binds to a hostPath volume made here
    // (claimRef: that claim only), as on a cluster whose volumes an admin provisions by hand.
    const pvDir = join(work, 'helm-data');
    mkdirSync(pvDir);
    chownSync(pvDir, 1000, 1000); // the manager's user (the chart's runAsUser; hostPath ignores fsGroup)
    await exec([kubectlBin(), '--kubeconfig', adminKc, 'apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: 'podgate-e2e-helm-data' },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: '',
          claimRef: { namespace: 'podgate', name: 'podgate-data' },
          hostPath: { path: pvDir, type: 'Directory' },
        },
      }),
    });

    const { helm: helmBin } = requireBinaries(['helm']);
    const helmHome = join(work, 'helm-home');
    const helm = (args: string[]) =>
      exec([helmBin, ...args], {
        check: false,
        timeoutMs: 300_000,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: helmHome,
          HELM_CACHE_HOME: join(helmHome, 'cache'),
          HELM_CONFIG_HOME: join(helmHome, 'config'),
          HELM_DATA_HOME: join(helmHome, 'data'),
          KUBECONFIG: adminKc,
        },
      });
    // the image built here and imported into containerd (no registry): Never pull, and the same reference
    // for the OpenVPN server the manager deploys
    const at = podgateImage.lastIndexOf(':');
    const t0 = Date.now();
    const installed = await helm([
      'install',
      'podgate',
      join(REPO, 'charts', 'podgate'),
      '--namespace',
      'podgate',
      '--set',
      `image.repository=${podgateImage.slice(0, at)}`,
      '--set-string',
      `image.tag=${podgateImage.slice(at + 1)}`,
      '--set',
      'image.pullPolicy=Never',
      '--set',
      'extraEnv[0].name=PODGATE_KUBERNETES_IMAGE',
      '--set-string',
      `extraEnv[0].value=${podgateImage}`,
    ]);
    assert.equal(installed.code, 0, installed.stdout + installed.stderr);
    assert.match(installed.stdout, /STATUS: deployed/);
    await waitManagerRollout(adminKc, 'podgate');
    figures['manager: helm install → Ready'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    // what runs is the release's: the Deployment and the cluster-wide RBAC carry its marks
    const dep = JSON.parse(await kubectl('-n', 'podgate', 'get', 'deployment', 'podgate-manager', '-o', 'json')) as {
      metadata: { annotations: Record<string, string>; labels: Record<string, string> };
    }; // prettier-ignore
    assert.equal(dep.metadata.annotations['meta.helm.sh/release-name'], 'podgate');
    assert.equal(dep.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
    assert.equal(
      (await kubectl('get', 'clusterrolebinding', 'podgate-manager-discovery', '-o', 'jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}')).trim(),
      'Helm',
    ); // prettier-ignore
    assert.equal(
      (await kubectl('-n', 'podgate', 'get', 'pvc', 'podgate-data', '-o', 'jsonpath={.spec.volumeName}')).trim(),
      'podgate-e2e-helm-data',
      "the chart's claim holds the data dir",
    ); // prettier-ignore

    const api = await openManagerApi({
      adminKc,
      namespace: 'podgate',
      socket: managerSocket(work, 'helm-manager'),
      password: 'helm admin password 2',
    });
    // middleware is the chart's, fresh: the manager deploys the server without a take-over
    const t1 = Date.now();
    const deploy = await deployFromManager(api);
    assert.equal(deploy.state, 'done', `${deploy.error}\n${deploy.events.map((e) => e.message).join('\n')}`);
    figures['helm manager: deploy (web API) → done'] = `${((Date.now() - t1) / 1000).toFixed(1)} s`;
    assert.match(
      await kubectl('get', 'namespace', 'middleware', '-o', 'jsonpath={.metadata.labels}'),
      /"pod-security.kubernetes.io\/enforce":"privileged"/,
      "the server namespace is the chart's, labelled for the pod",
    );
    // the server's NodePort is dialled next (UDP: no probe, openvpn retries): its ready endpoint first
    await waitForService({
      service: 'middleware/podgate-openvpn',
      slices: kubectlSlices(kubectlBin(), adminKc, 'middleware', 'podgate-openvpn'),
    });

    const cert = await newDevice(api, 'phone');
    assert.equal(cert.commonName, 'admin.phone');
    const phone = await createNamespace('pgnphone');
    await attachToLan(phone, 'eth0', '172.18.12.121/24', 'lp1');
    const c = connect(phone, 'phone', cert.profile);
    await waitClientConnected(c, 120_000);
    assert.match(
      (await wget(phone, `http://${web.podIp}/`)) ?? '',
      /hello from web/,
      'phone reaches the pod',
    );
    assert.match(
      (await wget(phone, `http://${web.clusterIp}/`)) ?? '',
      /hello from web/,
      'and the ClusterIP',
    );

    const ms = await revokeCutsClient({
      api,
      adminKc,
      managerNamespace: 'podgate',
      serverNamespace: 'middleware',
      serial: cert.serial,
      client: c,
    });
    figures['helm manager: revoke → cut'] = `${ms} ms`;
    assert.equal(
      await wget(phone, `http://${web.podIp}/`),
      undefined,
      'the pod is out of reach after the cut',
    );
    await api.stop();
  });
});
