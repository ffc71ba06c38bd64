/**
 * withBastion against a real sshd: the API server is reached through ssh direct-tcpip. Proof that the
 * traffic went through sshd, not straight to the server: the client only knows the tunnel's URL, and at
 * every connection the server accepts, `ss -p` names sshd as the owner of the peer socket.
 * First with a plain loopback HTTP server, then cluster discovery with the real Kubernetes client
 * against the real control plane (test/helpers/real-cluster.ts). The API server's peers are its own
 * components, so the tunnel targets a plain TCP relay in front of it: the relay records who connects
 * (only sshd) and passes the bytes through; TLS and the client certificate are end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get } from 'node:http';
import { connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { withBastion, type BastionTunnel } from '../../../src/gateway/ssh-tunnel.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import { discover } from '../../../src/cluster/discovery.js';
import {
  adminKubeConfigVia,
  ensureKubeDns,
  realCluster,
  tcpRelay,
  writeKubeConfig,
} from '../../helpers/real-cluster.js';
import { runCli } from '../../helpers/cli.js';
import { canRunSshd, makeKey, startSshd, type KeyPair, type Sshd } from '../../helpers/sshd.js';

/**
 * The process owning the client end of a connection to 127.0.0.1:`to` from local port `from`. Both ends
 * are named: Linux reuses an ephemeral port for connections to different destinations, so the source
 * port alone can also match another process's socket (kube-apiserver's own connections to etcd).
 */
function ownerOf(from: number, to: number): string {
  const r = spawnSync('ss', ['-tnpH', 'src', `127.0.0.1:${from}`, 'dst', `127.0.0.1:${to}`], {
    encoding: 'utf8',
  });
  return /users:\(\("([^"]+)"/.exec(r.stdout)?.[1] ?? `unknown (${r.stdout.trim() || r.stderr.trim()})`;
}

/** Records the owner of every peer that connects to `server`. */
function watchPeers(server: Server): string[] {
  const owners: string[] = [];
  server.on('connection', (s: Socket) => owners.push(ownerOf(s.remotePort!, s.localPort!)));
  return owners;
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('integration: gateway/ssh-tunnel (API server through an SSH bastion)', function () {
  this.timeout(60_000);
  let dir: string;
  let sshd: Sshd;
  let key: KeyPair;
  let knownHosts: string;
  const tunnels: BastionTunnel[] = [];

  const config = (over: Record<string, unknown> = {}): Config =>
    loadConfig({
      env: {},
      overrides: {
        dataDir: join(dir, 'data'),
        'kubernetes.sshBastion': `root@127.0.0.1:${sshd.port}`,
        'kubernetes.sshBastionIdentityFile': key.privateKeyFile,
        'gateway.knownHostsFile': knownHosts,
        ...over,
      },
    });
  const open = async (cfg: Config, url: string) => {
    const t = await withBastion(cfg, url);
    tunnels.push(t);
    return t;
  };

  before(async function () {
    if (!canRunSshd()) {
      if (process.env.CI === 'true') throw new Error('sshd tests need root and openssh-server');
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'pg-bastion-'));
    key = await makeKey(dir, 'bastion-key');
    sshd = await startSshd();
    sshd.authorize('root', key.publicKey);
    knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, sshd.knownHostsLine() + '\n');
  });
  afterEach(async () => {
    for (const t of tunnels.splice(0)) await t.close();
  });
  after(async () => {
    await sshd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without a bastion the URL is returned unchanged', async () => {
    const cfg = loadConfig({ env: {}, overrides: { dataDir: join(dir, 'data') } });
    const t = await withBastion(cfg, 'https://10.0.0.1:6443');
    assert.equal(t.url, 'https://10.0.0.1:6443');
    await t.close();
  });

  it('a plain HTTP server is reached through sshd, and close() stops the listener', async () => {
    const server = createServer((req, res) => res.end(`hello ${req.url}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const owners = watchPeers(server);
    try {
      const port = (server.address() as { port: number }).port;
      const t = await open(config(), `http://127.0.0.1:${port}`);
      const local = Number(new URL(t.url).port);
      assert.notEqual(local, port);
      assert.equal(t.tlsServerName, undefined);
      assert.equal(await httpGet(`${t.url}/a`), 'hello /a');
      assert.equal(await httpGet(`${t.url}/b`), 'hello /b');
      assert.deepEqual(owners, ['sshd', 'sshd'], 'every connection came from sshd');
      await t.close();
      await assert.rejects(
        new Promise((resolve, reject) =>
          connect(local, '127.0.0.1').on('connect', resolve).on('error', reject),
        ),
        /ECONNREFUSED/,
      );
    } finally {
      server.close();
    }
  });

  it('cluster discovery runs against the real API server reached only through the bastion', async function () {
    this.timeout(180_000);
    const cp = await realCluster();
    await ensureKubeDns(cp);
    const api = await tcpRelay(cp);
    const owners = watchPeers(api.server);
    try {
      const cfg = config();
      const t = await open(cfg, api.url);
      assert.equal(t.tlsServerName, '127.0.0.1');
      const r = await discover(cfg, { kube: createKubeApi(adminKubeConfigVia(cp, t.url)) });
      assert.deepEqual(r.podCidrs, ['10.244.0.0/24', '10.244.1.0/24']);
      assert.deepEqual(r.serviceCidrs, ['10.96.0.0/16']);
      assert.equal(r.dnsServer, '10.96.0.10');
      assert.deepEqual(r.nodeIps, ['172.18.0.2', '172.18.0.3']);
      assert.ok(owners.length > 0);
      assert.deepEqual([...new Set(owners)], ['sshd'], 'every API connection came from sshd');
    } finally {
      api.close();
    }
  });

  it('`podgate k8s discover` with kubernetes.sshBastion reaches the real API only through sshd, then exits', async function () {
    this.timeout(180_000);
    const cp = await realCluster();
    await ensureKubeDns(cp);
    const api = await tcpRelay(cp);
    const owners = watchPeers(api.server);
    try {
      const kubeconfig = writeKubeConfig(adminKubeConfigVia(cp, api.url), join(dir, 'kubeconfig'));
      const r = await runCli(['k8s', 'discover', '--json'], {
        PODGATE_DATA_DIR: join(dir, 'cli-data'),
        PODGATE_KUBERNETES_KUBECONFIG: kubeconfig,
        PODGATE_KUBERNETES_SSH_BASTION: `root@127.0.0.1:${sshd.port}`,
        PODGATE_KUBERNETES_SSH_BASTION_IDENTITY_FILE: key.privateKeyFile,
        PODGATE_GATEWAY_KNOWN_HOSTS_FILE: knownHosts,
      });
      assert.equal(r.code, 0, r.stderr);
      const d = JSON.parse(r.stdout) as { podCidrs: string[]; serviceCidrs: string[] };
      assert.deepEqual(d.podCidrs, ['10.244.0.0/24', '10.244.1.0/24']);
      assert.deepEqual(d.serviceCidrs, ['10.96.0.0/16']);
      assert.ok(owners.length > 0);
      assert.deepEqual([...new Set(owners)], ['sshd'], 'every API connection came from sshd');
    } finally {
      api.close();
    }
  });

  it('when the bastion goes away, requests fail cleanly and the process keeps running', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const other = await startSshd();
    try {
      other.authorize('root', key.publicKey);
      writeFileSync(knownHosts, `${sshd.knownHostsLine()}\n${other.knownHostsLine()}\n`);
      const port = (server.address() as { port: number }).port;
      const t = await open(
        config({ 'kubernetes.sshBastion': `root@127.0.0.1:${other.port}` }),
        `http://127.0.0.1:${port}`,
      );
      assert.equal(await httpGet(t.url), 'ok');
      await other.stop();
      // sshd's per-connection child outlives the listener (setsid): end it like a reboot would
      const ss = spawnSync('ss', ['-tnpH', 'state', 'established', 'sport', '=', `:${other.port}`], {
        encoding: 'utf8',
      });
      const pids = [...ss.stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
      assert.ok(pids.length > 0, ss.stdout);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      await assert.rejects(httpGet(t.url), /socket hang up|ECONNRESET|ECONNREFUSED/);
      await assert.rejects(httpGet(t.url), /socket hang up|ECONNRESET|ECONNREFUSED/);
    } finally {
      await other.stop();
      server.close();
      writeFileSync(knownHosts, sshd.knownHostsLine() + '\n');
    }
  });

  it('https keeps the real name for certificate checks', async () => {
    const t = await open(config(), `https://127.0.0.1:${sshd.port}/`);
    assert.match(t.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(t.tlsServerName, '127.0.0.1');
  });

  it('refuses an unknown bastion host key and bad settings, naming the key', async () => {
    await assert.rejects(
      withBastion(config({ 'gateway.knownHostsFile': join(dir, 'empty_known_hosts') }), 'http://127.0.0.1:1'),
      /host_key_unknown|is unknown/,
    );
    await assert.rejects(
      withBastion(config({ 'kubernetes.sshBastion': 'no-user-host' }), 'http://127.0.0.1:1'),
      /kubernetes\.sshBastion: .*has no user/,
    );
    await assert.rejects(
      withBastion(
        config({ 'kubernetes.sshBastionIdentityFile': join(dir, 'missing') }),
        'http://127.0.0.1:1',
      ),
      /kubernetes\.sshBastionIdentityFile .* cannot be read/,
    );
    await assert.rejects(withBastion(config(), 'ftp://x'), /must be http\(s\)/);
  });
});
