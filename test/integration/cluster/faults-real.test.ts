/**
 * Real faults on a real control plane of this suite's own (etcd, kube-apiserver v1.34, controllers,
 * scheduler, kubelet simulator; test/cluster/control-plane.ts): the suite stops and restarts the API
 * server and compacts etcd, which tests sharing the run's cluster must not see.
 *
 * - `podgate k8s deploy` (the CLI process) with the API server stopped half-way;
 * - `podgate agent --cluster` (the process) across an API server restart, with CRLs published while its
 *   watch was broken;
 * - the Secret watch's bookmarks, and a real 410 Gone after an etcd compaction.
 *
 * Where the test must act at one point of a running process it freezes that process (SIGSTOP) and lets
 * it go on afterwards (SIGCONT): the fault itself (the server gone, history compacted) is real.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { readAgentStatus } from '../../../src/cluster/agent-status.js';
import { createKubeApi } from '../../../src/cluster/kube-client.js';
import type { KubeApi } from '../../../src/cluster/kube-api.js';
import { SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { RESYNC_GRACE_MS, SecretWatchSource } from '../../../src/cluster/secret-watch-source.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import type { RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';
import { ControlPlane } from '../../cluster/control-plane.js';
import { rest, restOk } from '../../cluster/kube-rest.js';
import { CLI, tempDir } from '../../helpers/cli.js';
import { makeTestPki } from '../../helpers/openvpn.js';
import { adminKubeApi, freshNamespace, uniqueName } from '../../helpers/real-cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 30_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Spawned {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
}

/** The exit code, or an error showing the output when the process is still running after `ms`. */
async function exited(p: Spawned, ms = 90_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`still running after ${ms} ms\nstdout:\n${p.out()}\nstderr:\n${p.err()}`)),
      ms,
    );
  });
  try {
    return await Promise.race([p.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

function spawnCli(args: string[], env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, PODGATE_LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return { child, out: () => out, err: () => err, exit };
}

/**
 * A loopback TCP relay to the API server. hold() keeps every byte the server sends on the connections
 * open so far (the client sees nothing, the server sees a healthy peer); release() hands them over.
 */
async function relay(target: URL): Promise<{ url: string; hold(): void; release(): void; close(): void }> {
  const open: { client: Socket; upstream: Socket; held?: Buffer[]; ended: boolean }[] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    const c: (typeof open)[number] = { client, upstream, ended: false };
    client.pipe(upstream);
    upstream.on('data', (b: Buffer) => (c.held ? c.held.push(b) : client.write(b)));
    upstream.on('end', () => {
      c.ended = true;
      if (!c.held) client.end();
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    open.push(c);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
    hold() {
      for (const c of open) c.held ??= [];
    },
    release() {
      for (const c of open) {
        const held = c.held ?? [];
        c.held = undefined;
        for (const b of held) c.client.write(b);
        if (c.ended) c.client.end();
      }
    },
    close() {
      server.close();
      for (const c of open) {
        c.client.destroy();
        c.upstream.destroy();
      }
    },
  };
}

/** A KubeConfig like `kubeconfig` whose server is `server` (the relay). */
function kubeConfigVia(kubeconfig: string, server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const through = new KubeConfig();
  through.loadFromOptions({
    clusters: kc.clusters.map((c) => ({ ...c, server })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return through;
}

/** etcd's v3 JSON gateway (the harness's etcd listens on plain http on loopback). */
async function etcd<T>(cp: ControlPlane, path: string, body: unknown): Promise<T> {
  const res = await fetch(`${cp.etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Compacts etcd's history up to its current revision; returns that revision. */
async function compactEtcd(cp: ControlPlane): Promise<number> {
  const r = await etcd<{ header: { revision: string } }>(cp, '/v3/kv/range', {
    key: Buffer.from('/registry/').toString('base64'),
    limit: 1,
  });
  const revision = Number(r.header.revision);
  await etcd(cp, '/v3/kv/compaction', { revision: String(revision), physical: true });
  return revision;
}

/**
 * Starts the API server again and, as the kubelet or systemd of a real control plane would, restarts a
 * component that exited while it was gone: kube-controller-manager exits (klog.Fatal) when the API
 * server vanishes while it is still starting its controllers, which happens right after cp.start().
 */
async function restartApiServer(c: ControlPlane, extraArgs: string[] = []): Promise<void> {
  await c.startApiServer(extraArgs);
  for (const p of c.procs.values()) {
    if (p.running) continue;
    p.start();
    await p.waitReady(90_000);
  }
}

interface Status {
  code: number;
  reason: string;
  message: string;
}

const fakeBundle = (n: number): RevocationBundle => ({
  crlNumber: n,
  crlPem: `-----BEGIN X509 CRL-----\nnumber ${n}\n-----END X509 CRL-----\n`,
  revoked: [{ serial: `0${n}`, commonName: `device-${n}`, revokedAt: '2026-11-01T00:00:00.000Z' }],
  reissuedCommonNames: [],
});

describe('real faults on a control plane of its own: API server stopped, etcd compacted', function () {
  this.timeout(180_000);
  let cp: ControlPlane | undefined;
  let tmp: { dir: string; cleanup: () => void };
  let children: ChildProcess[] = [];
  /** The API server runs with flags a test changed: restart it with the defaults afterwards. */
  let variant = false;
  const killAll = () => {
    for (const p of cp?.procs.values() ?? []) {
      try {
        if (p.pid) process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };

  before(async function () {
    this.timeout(240_000);
    setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent');
    tmp = tempDir('podgate-faults-');
    cp = new ControlPlane({ dir: join(tmp.dir, 'cluster') });
    process.once('exit', killAll);
    await cp.start();
    await restOk(cp.adminCreds, 'POST', '/api/v1/namespaces/kube-system/services', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
      spec: { clusterIP: '10.96.0.10', selector: { 'k8s-app': 'kube-dns' }, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] },
    }); // prettier-ignore
  });
  afterEach(async function () {
    this.timeout(120_000);
    if (this.currentTest?.state === 'failed' && cp) console.error(cp.logTails(40));
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGCONT');
        c.kill('SIGKILL');
      }
    }
    children = [];
    if (cp && (variant || !cp.procs.get('kube-apiserver')?.running)) {
      await cp.stopApiServer();
      await restartApiServer(cp);
    }
    variant = false;
  });
  after(async function () {
    this.timeout(60_000);
    await cp?.stop({ removeDir: true });
    process.removeListener('exit', killAll);
    tmp?.cleanup();
  });

  it('`podgate k8s deploy` with the API server stopped half-way exits 1 naming the object; after a restart the next deploy completes', async function () {
    const c = cp!;
    const ns = uniqueName('faultdeploy');
    const env = {
      PODGATE_KUBERNETES_KUBECONFIG: c.kubeconfig,
      PODGATE_KUBERNETES_NAMESPACE: ns,
      PODGATE_KUBERNETES_NODE_PORT: '30400',
    };
    const args = ['--data-dir', join(tmp.dir, 'data'), 'k8s', 'deploy'];
    const first = spawnCli(args, env);
    children.push(first.child);
    // As soon as the first object exists, freeze the CLI, stop the API server, and let the CLI go on.
    await until(() => /^Namespace \S+ created$/m.test(first.out()), 'the first object applied', 60_000);
    first.child.kill('SIGSTOP');
    await c.stopApiServer();
    first.child.kill('SIGCONT');
    assert.equal(await exited(first), 1, first.err());

    const stopped = /deploy stopped at (\w+) (\S+) \((\d+)\/12\): (.*); the (\d+) object\(s\) before it were applied, run deploy again to continue/.exec(
      first.err(),
    ); // prettier-ignore
    assert.ok(stopped, first.err());
    const [, kind, name, pos, cause, before] = stopped;
    const at = Number(pos);
    assert.equal(Number(before), at - 1);
    assert.match(cause!, /ECONNREFUSED|ECONNRESET|socket hang up|other side closed/);
    const applied = first.out().match(/^\w+ \S+ created$/gm) ?? [];
    assert.equal(applied.length, at - 1, `objects reported before the failure:\n${first.out()}`);
    assert.ok(!first.out().includes(`${kind} ${name} `), 'the object it stopped at was not reported applied');

    await restartApiServer(c);
    const retry = spawnCli(args, env);
    children.push(retry.child);
    assert.equal(await exited(retry), 0, retry.err());
    const actions = (retry.out().match(/^\w+ \S+ (created|configured|unchanged)$/gm) ?? []).map(
      (l) => l.split(' ')[2],
    );
    assert.deepEqual(
      actions,
      [...Array<string>(at - 1).fill('unchanged'), ...Array<string>(13 - at).fill('created')],
      retry.out(),
    );
    assert.match(retry.out(), new RegExp(`^${kind} ${name.replace(/[/.]/g, '\\$&')} created$`, 'm'));
    assert.match(retry.out(), new RegExp(`deploy: ${13 - at} object\\(s\\) changed, rollout ready`));
  });

  it('`podgate agent --cluster` across an API server restart: CRLs published while its watch was broken are re-listed, applied and reported', async function () {
    const c = cp!;
    const kube = adminKubeApi(c);
    const ns = await freshNamespace(c, 'faultagent');
    await restOk(c.adminCreds, 'POST', `/api/v1/namespaces/${ns}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'podgate-agent-status', namespace: ns },
    });
    const pki = await makeTestPki();
    const publish = (crlPem: string, revoked: RevocationBundle['revoked'] = []) =>
      new SecretCrlPublisher(adminKubeApi(c), ns).publish({
        crlNumber: pki.crlNumber,
        crlPem,
        revoked,
        reissuedCommonNames: [],
      });
    const crl1 = pki.nextCrl();
    await publish(crl1);

    const dir = join(tmp.dir, ns);
    const caFile = join(dir, 'ca.crt');
    const crlFile = join(dir, 'crl.pem');
    mkdirSync(dir, { recursive: true });
    writeFileSync(caFile, pki.caPem);
    const agent = spawnCli(
      ['agent', '--cluster', '--ca-file', caFile, '--crl-file', crlFile,
        '--management-socket', join(dir, 'none.sock'), '--management-password-file', join(dir, 'none.pwd')],
      { PODGATE_LOG_LEVEL: 'info', PODGATE_KUBERNETES_KUBECONFIG: c.kubeconfig, PODGATE_KUBERNETES_NAMESPACE: ns, POD_NAME: 'podgate-openvpn-f1' },
    ); // prettier-ignore
    children.push(agent.child);
    await until(() => agent.err().includes(`podgate agent watching secret ${ns}/podgate-crl`), 'agent start');
    const crlNow = () => (existsSync(crlFile) ? readFileSync(crlFile, 'utf8').trim() : '');
    await until(() => crlNow() === crl1.trim(), 'CRL 1 in force');

    await c.stopApiServer();
    // The agent notices: its watch ended and its re-list failed (it retries with backoff).
    await until(() => /list\/watch failed; retrying/.test(agent.err()), 'the agent to see the outage');
    // Freeze it between two retries, so that what follows happens while its watch is broken.
    agent.child.kill('SIGSTOP');
    await restartApiServer(c);
    const erin = await pki.issueClient('erin.laptop');
    const fay = await pki.issueClient('fay.phone');
    const revokedAt = new Date().toISOString();
    await publish(pki.nextCrl(erin.serial), [{ serial: erin.serial, commonName: 'erin.laptop', revokedAt }]);
    const crl3 = pki.nextCrl(fay.serial);
    await publish(crl3, [
      { serial: erin.serial, commonName: 'erin.laptop', revokedAt },
      { serial: fay.serial, commonName: 'fay.phone', revokedAt },
    ]);
    agent.child.kill('SIGCONT');

    await until(() => crlNow() === crl3.trim(), 'the newest CRL (3) in force after the re-list');
    const status = await until(async () => {
      const s = await readAgentStatus(kube, ns);
      return s.pending.length === 2 ? s : undefined;
    }, 'the status ConfigMap to report both revocations');
    // No openvpn here: the CRL is in force and the sessions to cut are reported pending, with CRL 3.
    assert.deepEqual(status.pending.map((p) => [p.commonName, p.crlNumber]).sort(), [
      ['erin.laptop', 3],
      ['fay.phone', 3],
    ]);
    assert.match(status.pending[0]!.error, /none\.sock|ENOENT|management/i);
    // logged once the agent's apply returns, after its report to the ConfigMap
    await until(
      () => /"crlNumber":3.*"msg":"bundle applied"/.test(agent.err()),
      'the agent to log CRL 3 applied',
    );
    assert.doesNotMatch(
      agent.err(),
      /"crlNumber":2.*"msg":"bundle applied"/,
      'CRL 2 was never on a live watch',
    );
    agent.child.kill('SIGTERM');
    assert.equal(await exited(agent), 0, agent.err());
  });

  it('bookmarks: with nothing happening to podgate-crl the watch still advances its resourceVersion, and continues after the server ends it', async function () {
    const c = cp!;
    const ns = await freshNamespace(c, 'faultbookmark');
    await new SecretCrlPublisher(adminKubeApi(c), ns).publish(fakeBundle(1));
    const seen: number[] = [];
    const source = new SecretWatchSource({
      kube: adminKubeApi(c),
      namespace: ns,
      name: 'podgate-crl',
      resyncMs: 5000, // the server ends each watch after 5 s and sends a bookmark about 2 s before
      onBundle: async (b) => seen.push(b.crlNumber),
    });
    try {
      await source.start();
      const startRv = BigInt(source.resourceVersion);
      // Another Secret in the namespace changes: not an event for this watch (field selector)...
      const other = await restOk<{ metadata: { resourceVersion: string } }>(
        c.adminCreds,
        'POST',
        `/api/v1/namespaces/${ns}/secrets`,
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'unrelated', namespace: ns }, data: {} },
      );
      const otherRv = BigInt(other.body.metadata.resourceVersion);
      assert.ok(otherRv > startRv);
      // ...but the bookmark carries the server's newer resourceVersion.
      await until(() => source.stats.bookmarks >= 1, 'a bookmark', 15_000);
      assert.ok(BigInt(source.resourceVersion) >= otherRv, `${source.resourceVersion} >= ${otherRv}`);
      // The server ends the watch at its deadline; the source watches again from there, no re-list.
      await until(() => source.stats.watches >= 2, 'the next watch', 15_000);
      assert.equal(source.stats.lists, 1);
      await new SecretCrlPublisher(adminKubeApi(c), ns).publish(fakeBundle(2));
      await until(() => seen.includes(2), 'CRL 2 on the continued watch');
      assert.deepEqual(seen, [1, 2]);
      assert.equal(source.stats.expired, 0);
    } finally {
      source.stop();
    }
  });

  it('a real 410 Gone after an etcd compaction (watch cache off for Secrets): the source re-lists and gets the newest CRL', async function () {
    const c = cp!;
    // With the watch cache (the default) the API server serves watches from its own history, which an
    // etcd compaction does not touch; with it off for Secrets, watches go to etcd and meet the compaction.
    variant = true;
    await c.stopApiServer();
    await restartApiServer(c, ['--watch-cache-sizes=secrets#0']);
    const ns = await freshNamespace(c, 'faultgone');
    const publish = (n: number) => new SecretCrlPublisher(adminKubeApi(c), ns).publish(fakeBundle(n));
    await publish(1);

    const r = await relay(new URL(c.server));
    const resyncMs = 4000;
    let watchedAt = 0;
    const direct = createKubeApi(kubeConfigVia(c.kubeconfig, r.url), { timeoutMs: 5000 });
    const timed: KubeApi = {
      ...direct,
      async watch(...a) {
        const h = await direct.watch(...a);
        watchedAt = Date.now();
        return h;
      },
    };
    const seen: number[] = [];
    const source = new SecretWatchSource({
      kube: timed,
      namespace: ns,
      name: 'podgate-crl',
      resyncMs,
      onBundle: async (b) => seen.push(b.crlNumber),
    });
    try {
      await source.start();
      await publish(2);
      await until(() => seen.includes(2), 'CRL 2 on the live watch');
      const watchRv = BigInt(source.resourceVersion);
      // The client stops hearing its connections; the server ends the watch at its deadline (resyncMs),
      // and the client will only learn of that end when released.
      r.hold();
      const deadline = watchedAt + resyncMs;
      await sleep(Math.max(0, deadline + 1000 - Date.now()));
      // Published after that end: no watch carries it. Then history up to now is compacted away.
      await publish(3);
      await restOk(c.adminCreds, 'POST', `/api/v1/namespaces/${ns}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'bump', namespace: ns },
      });
      const compactedAt = await compactEtcd(c);
      assert.ok(BigInt(compactedAt) > watchRv + 1n);
      const listsBefore = source.stats.lists;
      assert.ok(
        Date.now() < watchedAt + resyncMs + RESYNC_GRACE_MS - 500,
        'released before the client deadline',
      );
      r.release(); // the client sees the clean end, watches again from its old resourceVersion: 410
      await until(() => seen.includes(3), 'CRL 3 after the 410', 15_000);
      assert.ok(source.stats.expired >= 1, `410 seen: ${JSON.stringify(source.stats)}`);
      assert.equal(source.stats.lists, listsBefore + 1, 'one re-list, for the 410');
      assert.deepEqual(seen, [1, 2, 3]);
      // What the server answers any watch from that version now (as an event in a 200 stream or as the
      // response's own status, depending on the path): 410 Expired.
      const gone = await rest<{ type?: string; object?: Status } & Status>(
        c.adminCreds,
        'GET',
        `/api/v1/namespaces/${ns}/secrets?watch=1&resourceVersion=${watchRv}&timeoutSeconds=2`,
      );
      const status = gone.body.type === 'ERROR' ? gone.body.object! : gone.body;
      assert.equal(status.code, 410, JSON.stringify(gone));
      assert.equal(status.reason, 'Expired');
      assert.match(status.message, /too old/);
    } finally {
      source.stop();
      r.close();
    }
  });
});
