/**
 * The data plane end to end, with the real openvpn 2.6 server and clients in network namespaces:
 * office (172.18.12.100) ─ node (172.18.12.21, `podgate server run`, NAT) ─ pod (10.244.1.5).
 * Profiles come from `podgate cert issue`, revocations from `podgate cert revoke`; everything podgate
 * does here goes through its CLI, as an admin would run it.
 *
 * Proves: tunnel to a pod IP and a ClusterIP; pushed routes and DNS reach the client; a revoke drops the
 * live session (server-pushed-halt) and it cannot reconnect while another client stays up; the audit log
 * shows revocation.effective; another CA, an expired certificate and a missing tls-crypt-v2 key are
 * refused; kill -9 of openvpn is repaired and revocations still hold; a revoke while the management
 * interface is down is pending, then applied; SIGTERM removes the NAT rule.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { createApp } from '../../src/web/app.js';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { serverPaths } from '../../src/openvpn/server-files.js';
import { openContext } from '../../src/services/context.js';
import { contextDepsFor } from '../../src/main.js';
import { openStore } from '../../src/store/index.js';
import { wrapTlsCryptV2ClientKey } from '../../src/pki/tls-crypt.js';
import {
  dnsQuery,
  startDnsServer,
  startEchoServer,
  tcpProbe,
  OFFICE_NODE_POD as A,
  type SpawnedProcess,
} from '../helpers/netns.js';
import { makeTestPki, waitClientConnected, PUSHED_HALT } from '../helpers/openvpn.js';
import { ADMIN_PASSWORD, count, REVOKED, requireNetns, until, VpnLab } from '../helpers/topology.js';
import { postDevice } from '../helpers/web-devices.js';

const PORT = 30030;
const ECHO = 7007;

describe('e2e: data plane (podgate server run + openvpn 2.6 in namespaces)', function () {
  this.timeout(180_000);
  let lab: VpnLab;
  let server: SpawnedProcess;
  const clients: Record<string, SpawnedProcess> = {};

  /** Clients in one namespace would share (and fight over) the pushed routes: bob gets his own. */
  function connect(name: string, profile?: string, role?: string): SpawnedProcess {
    const p = lab.client(name, { profile, role });
    clients[name] = p;
    return p;
  }

  before(async function () {
    await requireNetns(this);
    lab = await VpnLab.create({
      prefix: 'pgd',
      port: PORT,
      services: true,
      vpn: [
        `  dns: { servers: ["${A.clusterIp}"], domain: cluster.local, searchDomains: [svc.cluster.local] }`,
        '  nat: true',
      ],
    });
    await lab.init();
    // A second office host on its own link, so that two clients have their own routing tables.
    await lab.topo.link('office2', '172.18.13.100/24', 'node', '172.18.13.21/24');
    await lab.topo.route('office2', '172.18.12.0/24', '172.18.13.21');
    await startEchoServer(lab.topo.name('pod'), '0.0.0.0', ECHO);
    // The "cluster DNS": a resolver in the pod, reached through the ClusterIP the server pushes.
    await startDnsServer(lab.topo.name('pod'), '0.0.0.0', { 'orders.shop.svc.cluster.local': A.pod });
    server = await lab.startServerRun();
  });

  after(async () => {
    await lab?.close();
  });

  it('a profile from `podgate cert issue` connects and reaches a pod IP and a ClusterIP', async () => {
    await lab.issue('alice.laptop');
    const alice = connect('alice.laptop');
    await waitClientConnected(alice);
    assert.equal(await tcpProbe(lab.topo.name('office'), A.pod, ECHO), true, 'pod IP through the tunnel');
    assert.equal(
      await tcpProbe(lab.topo.name('office'), A.clusterIp, ECHO),
      true,
      'ClusterIP through the tunnel',
    );
  });

  it('a profile downloaded from the web app (POST /api/v1/devices) connects and reaches the pod', async () => {
    // The web app runs in this process on the same data dir, as `podgate serve` would next to `server run`
    // (with serve's publishers: the new device must reach server run's access bundle to be let in).
    const ctx = await openContext(lab.config(), contextDepsFor(lab.config()));
    try {
      const app = createApp({ ctx });
      const agent = request.agent(app);
      const login = await agent.post('/api/v1/login').send({ name: 'admin', password: ADMIN_PASSWORD });
      assert.equal(login.status, 200, login.text);
      const res = await postDevice(agent, (login.body as { csrfToken: string }).csrfToken, 'webdev');
      assert.equal(res.status, 201, String(res.body));
      assert.equal(res.headers['cache-control'], 'no-store');
      const web = connect('admin.webdev', String(res.body), 'office2');
      await waitClientConnected(web);
      assert.equal(await tcpProbe(lab.topo.name('office2'), A.pod, ECHO), true, 'pod IP through the tunnel');
      await web.stop(5000);
    } finally {
      await ctx.close();
    }
  });

  it('the client got the pod and service routes and the DNS options', async () => {
    const routes = (await lab.topo.run('office', ['ip', 'route'])).stdout;
    assert.match(routes, /^10\.244\.0\.0\/16 via 10\.140\.\d+\.\d+ dev tun\d/m);
    assert.match(routes, /^10\.96\.0\.0\/12 via 10\.140\.\d+\.\d+ dev tun\d/m);
    const log = clients['alice.laptop']!.output();
    const reply = /PUSH_REPLY,([^']*)'/.exec(log)?.[1] ?? '';
    for (const opt of [
      `dns server 0 address ${A.clusterIp}`,
      'dns server 0 resolve-domains cluster.local',
      'dns search-domains svc.cluster.local',
      `dhcp-option DNS ${A.clusterIp}`,
      'dhcp-option DOMAIN cluster.local',
    ]) {
      assert.ok(reply.includes(opt), `PUSH_REPLY carries "${opt}": ${reply}`);
    }
  });

  it('cluster names resolve through the tunnel with the pushed DNS server', async () => {
    const dns = /dns server 0 address ([0-9.]+)/.exec(clients['alice.laptop']!.output())?.[1];
    assert.equal(dns, A.clusterIp);
    assert.equal(await dnsQuery(lab.topo.name('office'), dns, 'orders.shop.svc.cluster.local'), A.pod);
    assert.equal(
      await dnsQuery(lab.topo.name('office'), dns, 'missing.svc.cluster.local'),
      undefined,
      'NXDOMAIN',
    );
  });

  it('`podgate sessions --json` lists the live session', async () => {
    const r = await lab.cli('sessions', '--json');
    const sessions = JSON.parse(r.stdout) as { commonName: string; realAddress: string }[];
    assert.ok(sessions.some((s) => s.commonName === 'alice.laptop' && s.realAddress.startsWith(A.office)));
  });

  it('revoking with the CLI drops the live session (server-pushed-halt); it cannot reconnect; bob stays up', async () => {
    await lab.issue('bob.laptop');
    const bob = connect('bob.laptop', lab.profiles['bob.laptop'], 'office2');
    await waitClientConnected(bob);
    const alice = clients['alice.laptop']!;
    const revokedBefore = count(server.output(), /revoked/i);
    await lab.cli('cert', 'revoke', 'alice.laptop', '--reason', 'keyCompromise');
    const exit = await Promise.race([
      alice.exited,
      new Promise((r) => setTimeout(() => r('timeout'), 15_000)),
    ]);
    assert.notEqual(exit, 'timeout', 'alice exits after the revoke');
    assert.match(alice.output(), PUSHED_HALT);
    assert.ok(bob.running, 'bob is still connected');
    assert.equal(
      await tcpProbe(lab.topo.name('office2'), A.pod, ECHO),
      true,
      "bob's tunnel still carries traffic",
    );

    const again = connect('alice.laptop');
    await lab.serverSays(REVOKED, revokedBefore);
    assert.doesNotMatch(again.output(), /Initialization Sequence Completed/);
    await again.stop();
  });

  it('the audit log shows revocation.effective for alice', async () => {
    const store = openStore(lab.dataDir);
    try {
      const rows = await store.listAudit({ action: 'revocation.effective' });
      const row = rows.find((r) => r.target === 'alice.laptop');
      assert.ok(row, 'revocation.effective row');
      assert.equal(row.result, 'ok');
      assert.equal(row.details.sessionsKilled, 1);
      assert.equal(typeof row.details.effectiveAt, 'string');
    } finally {
      await store.close();
    }
  });

  it('refuses a certificate from another CA, an expired certificate and a client without its tls-crypt-v2 key', async () => {
    const paths = serverPaths(lab.config());
    const serverTlsKey = readFileSync(paths.tlsCryptV2, 'utf8');
    const base = lab.profiles['bob.laptop']!;
    const withBlock = (profile: string, tag: string, body: string) =>
      profile.replace(new RegExp(`<${tag}>\\n[\\s\\S]*?\\n</${tag}>`), `<${tag}>\n${body.trim()}\n</${tag}>`);

    // Another CA: the profile trusts podgate's CA and has a valid tls-crypt-v2 key, the cert is foreign.
    const other = await makeTestPki();
    const foreign = await other.issueClient('mallory.laptop');
    let p = withBlock(withBlock(base, 'cert', foreign.certPem), 'key', foreign.keyPem);
    p = withBlock(p, 'tls-crypt-v2', wrapTlsCryptV2ClientKey(serverTlsKey));
    let before = count(server.output(), /VERIFY ERROR/);
    const m = connect('mallory', p);
    await lab.serverSays(/VERIFY ERROR/, before);
    assert.match(server.output(), /VERIFY ERROR: depth=0, error=unable to get local issuer certificate/);
    assert.doesNotMatch(m.output(), /Initialization Sequence Completed/);
    await m.stop();

    // Expired: signed by podgate's CA, valid for one day, three days ago.
    const ctx = await openContext(lab.config());
    let expired;
    try {
      expired = await ctx.ca.issue({
        kind: 'client',
        commonName: 'old.laptop',
        days: 1,
        now: new Date(Date.now() - 3 * 86_400_000),
      });
    } finally {
      await ctx.close();
    }
    p = withBlock(withBlock(base, 'cert', expired.certPem), 'key', expired.keyPem!);
    before = count(server.output(), /certificate has expired/);
    const o = connect('old', p);
    await lab.serverSays(/certificate has expired/, before);
    assert.doesNotMatch(o.output(), /Initialization Sequence Completed/);
    await o.stop();

    // No tls-crypt-v2 key: the server drops the reset packet unanswered, before any TLS.
    await lab.issue('carol.phone');
    const noKey = lab.profiles['carol.phone']!.replace(/<tls-crypt-v2>[\s\S]*?<\/tls-crypt-v2>\n?/, '');
    assert.doesNotMatch(noKey, /tls-crypt-v2/);
    // openvpn 2.6 logs this for a reset packet that carries no tls-crypt-v2 client key.
    const dropped = new RegExp(
      `TLS Error: could not determine wrapping from \\[AF_INET\\]${A.office.replace(/\./g, '\\.')}:`,
    );
    before = count(server.output(), dropped);
    const n = connect('nokey', noKey);
    // The client ran and sent its reset to the server's address...
    await until(
      () => n.output().includes(`UDPv4 link remote: [AF_INET]${A.node}:${PORT}`),
      20_000,
      'client start',
    );
    // ...and the server read it and dropped it.
    await lab.serverSays(dropped, before);
    assert.ok(n.running, 'the client is still trying, unanswered');
    assert.doesNotMatch(n.output(), /Initialization Sequence Completed|Peer Connection Initiated/);
    assert.ok(!server.output().includes('carol.phone'), 'the server never saw the client certificate');
    await n.stop();
  });

  it('kill -9 of openvpn: the supervisor restarts it and revocations still hold', async () => {
    const paths = serverPaths(lab.config());
    const pid = Number(readFileSync(paths.pidFile, 'utf8').trim());
    const readyBefore = count(server.output(), /Initialization Sequence Completed/);
    process.kill(pid, 'SIGKILL');
    await lab.serverSays(/Initialization Sequence Completed/, readyBefore, 30_000);
    const newPid = Number(readFileSync(paths.pidFile, 'utf8').trim());
    assert.notEqual(newPid, pid);

    const revokedBefore = count(server.output(), REVOKED);
    const alice = connect('alice.laptop');
    await lab.serverSays(REVOKED, revokedBefore);
    assert.doesNotMatch(alice.output(), /Initialization Sequence Completed/);
    await alice.stop();

    const carol = connect('carol.phone');
    await waitClientConnected(carol);
    assert.equal(await tcpProbe(lab.topo.name('office'), A.pod, ECHO), true);
  });

  it('a revoke while the management interface is down is pending, then applied', async () => {
    const paths = serverPaths(lab.config());
    const pid = Number(readFileSync(paths.pidFile, 'utf8').trim());
    const carol = clients['carol.phone']!;
    process.kill(pid, 'SIGSTOP'); // openvpn accepts no management connection and answers nothing
    try {
      await lab.cli('cert', 'revoke', 'carol.phone', '--reason', 'keyCompromise');
      await until(
        async () => {
          const store = openStore(lab.dataDir);
          try {
            return (await store.listPending()).some((x) => x.commonName === 'carol.phone');
          } finally {
            await store.close();
          }
        },
        15_000,
        'carol pending',
      );
      assert.ok(carol.running, 'carol is still up while openvpn cannot be told');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const exit = await Promise.race([
      carol.exited,
      new Promise((r) => setTimeout(() => r('timeout'), 20_000)),
    ]);
    assert.notEqual(exit, 'timeout', 'carol exits once the management interface is back');
    assert.match(carol.output(), PUSHED_HALT);
    // The agent records the kill after openvpn confirms it, so the row may land just after carol exits.
    await until(
      async () => {
        const s = openStore(lab.dataDir);
        try {
          return (await s.listPending()).length === 0;
        } finally {
          await s.close();
        }
      },
      15_000,
      'pending cleared',
    );
    const store = openStore(lab.dataDir);
    try {
      const actions = (await store.listAudit({ target: 'carol.phone' })).map((r) => r.action);
      assert.ok(actions.includes('revocation.pending'));
      assert.ok(actions.includes('revocation.effective'));
    } finally {
      await store.close();
    }
  });

  it('SIGTERM stops openvpn and removes the NAT rule', async () => {
    const before = (await lab.topo.iptables('node', ['-t', 'nat', '-S', 'POSTROUTING'])).stdout;
    assert.match(before, /10\.140\.0\.0\/16.*MASQUERADE/);
    const pid = Number(readFileSync(serverPaths(lab.config()).pidFile, 'utf8').trim());
    process.kill(server.pid, 'SIGTERM'); // the supervisor only, not its process group
    const exit = await server.exited;
    assert.equal(exit.code, 0);
    const after = (await lab.topo.iptables('node', ['-t', 'nat', '-S', 'POSTROUTING'])).stdout;
    assert.doesNotMatch(after, /MASQUERADE/);
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'openvpn is gone');
    assert.ok(!existsSync(dirname(serverPaths(lab.config()).activeCrl)), 'runtime CRL dir removed');
  });
});
