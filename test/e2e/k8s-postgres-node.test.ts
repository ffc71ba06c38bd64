/**
 * The manager on PostgreSQL as a user installs it: `kubectl apply -k k8s-postgres/` (2 `serve` replicas,
 * no PVC, RollingUpdate, the Lease that elects the replica running the timers) on a real node (the control
 * plane built from upstream, kubelet + containerd + kube-proxy in the node's namespace at 172.18.12.21),
 * with PostgreSQL in the cluster: a plain Deployment of the Debian postgresql image built by the harness
 * (test/cluster/images), Service `podgate-postgres` as the overlay expects.
 *
 *   dev + admin (relay, a fresh connection per call) ── Service podgate-manager ── replica A | replica B
 *   laptop (172.18.12.130, openvpn) ── NodePort ── server pod (deployed by the manager)   └─ podgate-postgres
 *
 * Then a developer downloads profiles in a loop (POST /api/v1/devices through the Service, one retry
 * allowed per call) while the leader's pod is deleted (a drain's graceful delete) and an admin revokes the
 * laptop's certificate: no call fails after its retry, the revoke reaches podgate-crl and cuts the
 * laptop, the Lease moves to the other replica, the Deployment is back to 2 Ready pods and a call on the
 * new pod works. Figures (calls retried, revoke → cut, leadership move) are printed, never asserted.
 * Part of `npm test`; alone: `npm run test:node-postgres`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../src/lib/exec.js';
import { cleanupAll, createNamespace, runIn, type SpawnedProcess } from '../helpers/netns.js';
import { startClient, waitClientConnected } from '../helpers/openvpn.js';
import { attachToLan, NODE_NETNS } from '../cluster/node/node.js';
import { SocketHttp, writeManagerOverlay } from '../cluster/node/manager-overlay.js';
import {
  deployFromManager,
  managerSocket,
  newDevice,
  openManagerApi,
  requestRetried,
  revokeCutsClient,
  until,
  waitManagerRollout,
  type ManagerApi,
} from '../cluster/node/in-cluster-manager.js';
import { claimRealNode, startRealNode, stopRealNode } from '../cluster/node/real-node-run.js';
import { POSTGRES_UID } from '../cluster/images/build-images.js';
import type { ControlPlane } from '../cluster/control-plane.js';
import { postgresWorkload } from '../cluster/node/workloads.js';
import { kubectlBin } from '../cluster/node/paths.js';
import { kubectlSlices, waitForService } from '../cluster/node/service-ready.js';

const REPO = process.cwd();
const ADMIN_PASSWORD = 'postgres admin password 3';
const DEV_PASSWORD = 'developer password on postgres 4';

interface Lease {
  holder: string;
  transitions: number;
}

interface Call {
  i: number;
  start: number;
  end: number;
  status: number;
  attempts: number;
  failures: string[];
}

describe('e2e: the manager on PostgreSQL, 2 replicas (k8s-postgres/) on a real node: a pod lost while profiles are downloaded and a certificate revoked', function () {
  this.timeout(40 * 60_000);
  let cp: ControlPlane | undefined;
  let work: string;
  let adminKc: string;
  let api: ManagerApi | undefined;
  let locked = false;
  let podgateImage = '';
  const clients: SpawnedProcess[] = [];
  const figures: Record<string, string> = {};

  const kubectl = async (...args: string[]) =>
    (await exec([kubectlBin(), '--kubeconfig', adminKc, ...args], { timeoutMs: 120_000 })).stdout;

  async function lease(): Promise<Lease | undefined> {
    const r = await exec(
      [
        kubectlBin(),
        '--kubeconfig',
        adminKc,
        '-n',
        'podgate',
        'get',
        'lease',
        'podgate-manager',
        '-o',
        'json',
      ],
      { check: false, timeoutMs: 30_000 },
    );
    if (r.code !== 0) return undefined;
    const spec = (JSON.parse(r.stdout) as { spec: { holderIdentity?: string; leaseTransitions?: number } })
      .spec;
    return { holder: spec.holderIdentity ?? '', transitions: spec.leaseTransitions ?? 0 };
  }

  async function managerPods(): Promise<{ name: string; ready: boolean; deleting: boolean }[]> {
    const list = JSON.parse(
      await kubectl(
        '-n',
        'podgate',
        'get',
        'pods',
        '-l',
        'app.kubernetes.io/component=manager',
        '-o',
        'json',
      ),
    ) as {
      items: {
        metadata: { name: string; deletionTimestamp?: string };
        status: { conditions?: { type: string; status: string }[] };
      }[];
    };
    return list.items.map((p) => ({
      name: p.metadata.name,
      ready: (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
      deleting: p.metadata.deletionTimestamp !== undefined,
    }));
  }

  /** The `.ovpn` text of a POST /api/v1/devices answer (JSON: `{ device, profile }`), or ''. */
  const profileOf = (text: string): string => {
    try {
      return String((JSON.parse(text) as { profile?: unknown }).profile ?? '');
    } catch {
      return '';
    }
  };

  /** The pod whose replica holds the Lease (identity: the pod's host name, `_`, a random suffix). */
  const podOf = (holder: string) => holder.replace(/_[0-9a-f]+$/, '');

  before(async function () {
    // a cold cache builds the PostgreSQL image first (apt-get inside buildah): minutes once, then cached
    this.timeout(90 * 60_000);
    await claimRealNode(this, 'the PostgreSQL real-node e2e (test/e2e/k8s-postgres-node.test.ts)');
    locked = true;
    work = mkdtempSync(join(tmpdir(), 'pg-k8s-pg-'));
    const run = await startRealNode(REPO, work, { postgres: true });
    cp = run.cp;
    adminKc = run.adminKc;
    Object.assign(figures, run.figures);
    const images = run.images;
    podgateImage = images.podgate.ref;
    assert.ok(images.postgres, 'the PostgreSQL image was built');

    // what k8s/README.md asks before applying k8s-postgres/: the namespaces, the database, the Secrets
    await kubectl('apply', '-f', join(REPO, 'k8s', 'namespace.yaml'));
    const secret = (name: string, key: string, value: string) =>
      kubectl('-n', 'podgate', 'create', 'secret', 'generic', name, `--from-literal=${key}=${value}`);
    await secret('podgate-postgres', 'password', randomBytes(18).toString('hex'));
    await secret('podgate-ca', 'passphrase', randomBytes(24).toString('hex'));
    await secret('podgate-admin', 'password', ADMIN_PASSWORD);
    const t0 = Date.now();
    await exec([kubectlBin(), '--kubeconfig', adminKc, 'apply', '-f', '-'], {
      input: JSON.stringify(
        postgresWorkload('podgate', images.postgres.ref, POSTGRES_UID, 'podgate-postgres'),
      ),
    });
    await kubectl('-n', 'podgate', 'rollout', 'status', 'deployment/podgate-postgres', '--timeout=180s');
    const pgIp = (
      await kubectl('-n', 'podgate', 'get', 'service', 'podgate-postgres', '-o', 'jsonpath={.spec.clusterIP}')
    ).trim();
    // a fresh Service: endpoints published and kube-proxy's rules in place before the managers dial it
    await waitForService({
      service: 'podgate/podgate-postgres',
      slices: kubectlSlices(kubectlBin(), adminKc, 'podgate', 'podgate-postgres'),
      probe: async () => {
        const script = `const s=require('net').connect(5432,process.argv[1]);s.setTimeout(2000,()=>process.exit(1));s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1))`;
        const r = await runIn(NODE_NETNS, [process.execPath, '-e', script, pgIp], {
          check: false,
          timeoutMs: 10_000,
        });
        return r.code === 0 ? 'ok' : undefined;
      },
    });
    figures['postgres: apply → Service answers'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  });

  after(async function () {
    this.timeout(5 * 60_000);
    for (const c of clients) await c.stop(3000).catch(() => undefined);
    await api?.stop().catch(() => undefined);
    await cleanupAll();
    if (!locked) return; // another run has the node: nothing here is ours
    const problems = await stopRealNode(cp);
    if (work) rmSync(work, { recursive: true, force: true });
    if (Object.keys(figures).length) {
      console.log('    figures:');
      for (const [k, v] of Object.entries(figures)) console.log(`      ${k}: ${v}`);
    }
    const left = [...problems];
    if (work && existsSync(work)) left.push(`dir ${work}`);
    const netns = (await exec(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!);
    for (const n of netns) if (/^pgp/.test(n)) left.push(`netns ${n}`);
    assert.deepEqual(left, [], 'the real-node run left nothing behind');
  });

  it('kubectl apply -k k8s-postgres/ runs 2 manager replicas on the PostgreSQL pod: one holds the Lease, and they deploy the server', async () => {
    // The developer below downloads more profiles than a user may hold (10) or make in an hour (20):
    // both limits raised here, as an admin would for a bulk enrolment, so that every call is a real issue.
    const overlay = writeManagerOverlay(join(work, 'manager-overlay'), REPO, podgateImage, {
      base: 'k8s-postgres',
      env: { PODGATE_DEVICES_MAX_VALID_PER_USER: '1000', PODGATE_DEVICES_ISSUES_PER_HOUR: '10000' },
    });
    const t0 = Date.now();
    await kubectl('apply', '-k', overlay);
    await waitManagerRollout(adminKc, 'podgate');
    figures['manager ×2: kubectl apply -k k8s-postgres → Ready'] =
      `${((Date.now() - t0) / 1000).toFixed(1)} s`;

    const dep = JSON.parse(
      await kubectl('-n', 'podgate', 'get', 'deployment', 'podgate-manager', '-o', 'json'),
    ) as {
      spec: {
        replicas: number;
        strategy: { type: string };
        template: {
          spec: { volumes: { name: string; emptyDir?: object; persistentVolumeClaim?: object }[] };
        };
      };
      status: { readyReplicas?: number };
    };
    assert.equal(dep.spec.replicas, 2);
    assert.equal(dep.status.readyReplicas, 2, 'both replicas Ready');
    assert.equal(dep.spec.strategy.type, 'RollingUpdate');
    const data = dep.spec.template.spec.volumes.find((v) => v.name === 'data');
    assert.ok(data?.emptyDir && !data.persistentVolumeClaim, 'the data dir is an emptyDir, no claim');
    assert.equal((await kubectl('-n', 'podgate', 'get', 'pvc', '-o', 'name')).trim(), '', 'no PVC');

    const pods = await managerPods();
    assert.equal(pods.filter((p) => p.ready).length, 2);
    const held = await until('a Lease holder', async () => (await lease())?.holder || undefined, 60_000, 500);
    assert.ok(
      pods.some((p) => p.name === podOf(held)),
      `the Lease holder ${held} is one of the manager pods ${pods.map((p) => p.name).join(', ')}`,
    );

    api = await openManagerApi({
      adminKc,
      namespace: 'podgate',
      socket: managerSocket(work, 'pg-manager'),
      password: ADMIN_PASSWORD,
    });
    const t1 = Date.now();
    const deploy = await deployFromManager(api);
    assert.equal(deploy.state, 'done', `${deploy.error}\n${deploy.events.map((e) => e.message).join('\n')}`);
    figures['deploy (web API) → done'] = `${((Date.now() - t1) / 1000).toFixed(1)} s`;
    // the server's NodePort is dialled next (UDP: no probe, openvpn retries): its ready endpoint first
    await waitForService({
      service: 'middleware/podgate-openvpn',
      slices: kubectlSlices(kubectlBin(), adminKc, 'middleware', 'podgate-openvpn'),
    });
  });

  it('the leader pod deleted while a developer downloads profiles and an admin revokes: nothing lost beyond one retry, the client cut, the Lease moved', async () => {
    assert.ok(api, 'the manager API from the test before');
    // the admin's laptop, connected through the server the managers deployed
    const laptopCert = await newDevice(api, 'laptop');
    const laptopNs = await createNamespace('pgplap');
    await attachToLan(laptopNs, 'eth0', '172.18.12.130/24', 'lpl1');
    const laptop = startClient(laptopNs, work, `laptop-${Date.now()}`, laptopCert.profile, [
      '--connect-retry',
      '1',
      '1',
    ]);
    clients.push(laptop);
    await waitClientConnected(laptop, 120_000);

    // the developer: a user of their own, signed in through the same Service
    const dev = await api.http.request(
      'POST',
      '/api/v1/users',
      { name: 'dev', password: DEV_PASSWORD },
      api.csrf,
    );
    assert.equal(dev.status, 201, dev.text);
    const devHttp = new SocketHttp(managerSocket(work, 'pg-manager'), 'podgate-manager.podgate');
    const login = await devHttp.request('POST', '/api/v1/login', { name: 'dev', password: DEV_PASSWORD });
    assert.equal(login.status, 200, login.text);
    // a fresh connection per call (`Connection: close`), so kube-proxy picks a replica for each, as for
    // browsers on many machines; a kept-alive connection would stay on one pod
    const devHeaders = {
      'X-CSRF-Token': (JSON.parse(login.text) as { csrfToken: string }).csrfToken,
      Connection: 'close',
    };
    const calls: Call[] = [];
    let stop = false;
    const loop = (async () => {
      for (let i = 1; !stop; i++) {
        const start = Date.now();
        const r = await requestRetried(
          devHttp,
          1,
          'POST',
          '/api/v1/devices',
          { name: `d${i}` },
          devHeaders,
        ).catch((err: Error) => ({
          reply: { status: 0, text: err.message, headers: {} },
          attempts: 2,
          failures: [err.message],
        }));
        calls.push({
          i,
          start,
          end: Date.now(),
          status: r.reply.status,
          attempts: r.attempts,
          failures: r.failures,
        });
        if (r.reply.status !== 201)
          calls[calls.length - 1]!.failures.push(`final ${r.reply.status} ${r.reply.text.slice(0, 300)}`);
        if (r.reply.status === 201 && !/^remote /m.test(profileOf(r.reply.text)))
          calls[calls.length - 1]!.failures.push('no profile in the answer');
      }
    })();
    try {
      await until(
        '5 profiles downloaded before the deletion',
        async () => calls.length >= 5 || undefined,
        120_000,
        100,
      );

      const before = await lease();
      assert.ok(before?.holder, 'a leader before the deletion');
      const leaderPod = podOf(before.holder);
      const tDelete = Date.now();
      const callsBefore = calls.length;
      // a drain's delete: graceful (SIGTERM, the pod's grace period); the command returns at once
      await kubectl('-n', 'podgate', 'delete', 'pod', leaderPod, '--wait=false');
      const adminRetries: string[] = [];
      const [cutMs, moved] = await Promise.all([
        revokeCutsClient({
          api,
          adminKc,
          managerNamespace: 'podgate',
          serverNamespace: 'middleware',
          serial: laptopCert.serial,
          client: laptop,
          retries: 1,
          onRetry: (why) => adminRetries.push(why),
        }),
        until(
          'the Lease held by another replica',
          async () => {
            const l = await lease();
            return l?.holder && podOf(l.holder) !== leaderPod ? { ...l, at: Date.now() } : undefined;
          },
          120_000,
          100,
        ),
      ]);
      figures['revoke → cut (leader pod deleted at the same moment)'] = `${cutMs} ms`;
      figures['pod deleted → Lease held by the other replica'] = `${moved.at - tDelete} ms`;
      figures['admin revoke: tries that failed'] = adminRetries.length ? adminRetries.join('; ') : 'none';
      assert.ok(
        moved.transitions > before.transitions,
        `leaseTransitions rose: ${before.transitions} → ${moved.transitions}`,
      );
      const survivors = await managerPods();
      assert.ok(
        survivors.some((p) => p.name === podOf(moved.holder) && !p.deleting),
        `the new holder ${moved.holder} is a manager pod that stays (${JSON.stringify(survivors)})`,
      );

      // the ReplicaSet's replacement: 2 Ready pods again, the deleted one gone
      await until(
        'two Ready manager pods again, the deleted one gone',
        async () => {
          const p = await managerPods();
          return (
            (p.filter((x) => x.ready && !x.deleting).length === 2 && !p.some((x) => x.name === leaderPod)) ||
            undefined
          );
        },
        300_000,
        500,
      );
      figures['pod deleted → 2 Ready replicas again'] = `${((Date.now() - tDelete) / 1000).toFixed(1)} s`;
      // a few more downloads with both replicas (the new one included) serving
      const n = calls.length;
      await until(
        '5 more profiles with the new pod in service',
        async () => calls.length >= n + 5 || undefined,
        120_000,
        100,
      );
      stop = true;
      await loop;

      const during = calls.filter((c) => c.end >= tDelete).length;
      const retried = calls.filter((c) => c.attempts > 1);
      const lost = calls.filter(
        (c) => c.status !== 201 || c.failures.some((f) => /^final|no profile/.test(f)),
      );
      figures['profile downloads'] =
        `${calls.length} (${callsBefore} before the deletion, ${during} from the deletion on)`;
      figures['downloads retried once'] =
        `${retried.length}${retried.length ? `: ${retried.map((c) => `#${c.i} ${c.failures.join(', ')}`).join('; ')}` : ''}`;
      const ms = calls.map((c) => c.end - c.start).sort((a, b) => a - b);
      figures['download time (median / max)'] = `${ms[Math.floor(ms.length / 2)]} / ${ms[ms.length - 1]} ms`;
      assert.deepEqual(
        lost.map((c) => `#${c.i}: ${c.failures.join('; ')}`),
        [],
        'every download answered 201 with a profile within one retry',
      );
      assert.ok(during >= 5, `downloads went on across the deletion (${during})`);
      // every download is a device of the developer's, once (a retried call made no second one)
      const names: string[] = [];
      for (let cursor: string | undefined, page = 0; page === 0 || cursor; page++) {
        const q = `/api/v1/devices?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const r = JSON.parse((await devHttp.request('GET', q)).text) as {
          items: { name: string }[];
          nextCursor?: string | null;
        };
        names.push(...r.items.map((d) => d.name));
        cursor = r.nextCursor ?? undefined;
      }
      assert.equal(
        names.length,
        calls.length,
        `one device per download: ${names.length} for ${calls.length}`,
      );
      const have = new Set(names);
      for (const c of calls) assert.ok(have.has(`d${c.i}`), `device d${c.i} is the developer's`);
    } finally {
      stop = true;
      await loop;
    }
  });
});
