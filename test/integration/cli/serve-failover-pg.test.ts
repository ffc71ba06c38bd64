/**
 * Leader failover between two real `podgate serve` processes on one PostgreSQL database, in both modes:
 * the advisory lock (outside Kubernetes) and the coordination.k8s.io Lease on the real API server
 * (test/cluster, v1.34; `serve` told it runs in a pod, with the admin kubeconfig). The CRL refresh is set to 2 s so that the leader re-signs often; the
 * replica holding the lock is SIGKILLed (no chance to give the lock up); the other takes the lock and
 * runs the next re-sign. Shown with the timestamps of both processes' own logs (pino `time`, one
 * machine's clock): the killed one re-signed only before the kill, the survivor took the leadership
 * after it and re-signed only after taking it, so there were never two leaders. The delays measured
 * (kill → takeover, kill → next re-sign) are printed next to the lease duration; no assertion is made
 * on them (the machine is shared): bench figures go in the change note.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { sharedPostgres } from '../../helpers/pg-store.js';
import { dropNamespace, freshNamespace, realCluster } from '../../helpers/real-cluster.js';
import { startServe, type Serving } from '../../helpers/serve.js';

const LEASE_S = 5;
const REFRESH_S = 2;
const ADMIN_PASSWORD = 'Failover-Admin-Pass-2026';

interface LogLine {
  time: number;
  msg: string;
  crlNumber?: number;
  leader?: boolean;
}

function logLines(s: Serving): LogLine[] {
  return s
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

type Mode = 'advisory lock' | 'Lease';
const tookLead = (s: Serving, mode: Mode) =>
  logLines(s)
    .filter((l) => l.msg === `took the leadership (${mode})`)
    .map((l) => l.time);
const resigns = (s: Serving) => logLines(s).filter((l) => l.msg === 'CRL re-signed');

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A fresh database on the shared PostgreSQL and the environment two `serve` replicas share for it. */
async function sharedDatabase(dir: string, name: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const pg = await sharedPostgres();
  const database = await pg.createDatabase(name);
  writeFileSync(join(dir, 'ca-passphrase'), 'failover-shared-ca-passphrase\n', { mode: 0o600 });
  writeFileSync(join(dir, 'admin-password'), `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    PODGATE_STORE_URL: pg.url(database),
    PODGATE_STORE_PASSWORD_FILE: pg.passwordFile,
    PODGATE_STORE_LEASE_SECONDS: String(LEASE_S),
    PODGATE_VPN_CRL_REFRESH_SECONDS: String(REFRESH_S),
    PODGATE_CA_PASSPHRASE_FILE: join(dir, 'ca-passphrase'),
    PODGATE_ADMIN_PASSWORD_FILE: join(dir, 'admin-password'),
    PODGATE_LOG_LEVEL: 'info',
    PGPASSWORD: '',
    ...extraEnv,
  };
  return { env, database };
}

describe('serve x2 on one PostgreSQL: SIGKILL of the leader moves the CRL re-sign to the other', function () {
  this.timeout(240_000);
  let dir: string;
  const serves: Serving[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-failover-'));
  });
  afterEach(async () => {
    for (const s of serves) s.child.kill('SIGKILL');
    await Promise.all(serves.map((s) => s.stop()));
    serves.length = 0;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function failover(mode: Mode, extraEnv: NodeJS.ProcessEnv): Promise<void> {
    const { env, database } = await sharedDatabase(dir, 'failover', extraEnv);
    serves.push(await startServe({ dataDir: join(dir, `${database}-a`), env }));
    serves.push(await startServe({ dataDir: join(dir, `${database}-b`), env }));
    // from here on only the timers re-sign (each replica re-signs a due CRL once at start, leader or not)
    const upAt = Date.now();
    const timerResigns = (s: Serving) => resigns(s).filter((r) => r.time > upAt);
    // the leader re-signs every REFRESH_S; wait for two of them
    await until('two re-signs by the leader', () => serves.some((s) => timerResigns(s).length >= 2));
    const leaderIx = serves.findIndex((s) => tookLead(s, mode).length > 0);
    assert.notEqual(leaderIx, -1, 'one replica logged taking the leadership');
    const leader = serves[leaderIx]!;
    const other = serves[1 - leaderIx]!;
    assert.deepEqual(tookLead(other, mode), [], 'the other never took it while the leader lived');
    assert.deepEqual(timerResigns(other), [], 'the other re-signed nothing while the leader lived');

    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    await leader.stop(); // resolves once it has exited
    await until('the survivor re-signs', () => timerResigns(other).length > 0);

    const leaderResigns = timerResigns(leader);
    const took = tookLead(other, mode);
    const otherResigns = timerResigns(other);
    assert.equal(took.length, 1, 'the survivor took the leadership once');
    assert.ok(took[0]! >= killedAt, `took it at ${took[0]}, before the kill at ${killedAt}`);
    for (const r of leaderResigns)
      assert.ok(r.time < took[0]!, `the killed leader re-signed at ${r.time}, after the takeover ${took[0]}`);
    for (const r of otherResigns)
      assert.ok(r.time >= took[0]!, `the survivor re-signed at ${r.time}, before its takeover ${took[0]}`);
    // every re-sign of either (start-up ones too), in time order: numbers strictly rising
    const numbers = [...resigns(leader), ...resigns(other)]
      .sort((a, b) => a.time - b.time)
      .map((r) => r.crlNumber!);
    for (let i = 1; i < numbers.length; i++)
      assert.ok(numbers[i]! > numbers[i - 1]!, `CRL numbers ${numbers.join(', ')} not strictly rising`);

    console.log(
      `      ${mode}, lease ${LEASE_S} s, refresh ${REFRESH_S} s: kill -> survivor took over ${took[0]! - killedAt} ms, ` +
        `-> next CRL re-sign (#${otherResigns[0]!.crlNumber}) ${otherResigns[0]!.time - killedAt} ms ` +
        `(last by the killed leader: #${leaderResigns.at(-1)!.crlNumber}, ${killedAt - leaderResigns.at(-1)!.time} ms before the kill)`,
    );
  }

  it('advisory lock: the survivor takes the lock after the kill and re-signs; never two leaders', async () => {
    await failover('advisory lock', {});
  });

  it('Lease (real API server): the survivor takes the Lease after the kill and re-signs; never two leaders', async () => {
    const cp = await realCluster();
    const ns = await freshNamespace(cp, 'failover');
    try {
      await failover('Lease', {
        // what a pod has; the API server is the test's, reached with the admin kubeconfig
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        PODGATE_KUBERNETES_KUBECONFIG: cp.kubeconfig,
        PODGATE_KUBERNETES_NAMESPACE: ns,
        PODGATE_STORE_LEASE_NAMESPACE: ns,
      });
    } finally {
      await dropNamespace(cp, ns);
    }
  });
});

/**
 * A replica stopped by SIGTERM (a node drain, a rolling update) lets its requests in flight answer for
 * up to 10 s. Its timers stop at once, and so must its leadership: the other replica takes over while
 * this one still drains, not after. The request is held in flight by hand (headers sent, body not yet)
 * until the takeover shows, then completed: it still gets its answer.
 */
describe('serve x2 on one PostgreSQL: SIGTERM of the leader hands the leadership over while it drains', function () {
  this.timeout(120_000);
  let dir: string;
  const serves: Serving[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-handover-'));
  });
  after(async () => {
    for (const s of serves) s.child.kill('SIGKILL');
    await Promise.all(serves.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('the other replica takes the lock before the stopped one has finished its request in flight', async () => {
    const { env, database } = await sharedDatabase(dir, 'handover');
    serves.push(await startServe({ dataDir: join(dir, `${database}-a`), env }));
    serves.push(await startServe({ dataDir: join(dir, `${database}-b`), env }));
    const mode: Mode = 'advisory lock';
    await until('one replica leads', () => serves.some((s) => tookLead(s, mode).length > 0));
    const leader = serves.find((s) => tookLead(s, mode).length > 0)!;
    const other = serves.find((s) => s !== leader)!;

    const { hostname, port } = new URL(leader.url);
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(Number(port), hostname, () => resolve(s));
      s.once('error', reject);
    });
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const answered = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const body = JSON.stringify({ name: 'admin', password: ADMIN_PASSWORD });
    socket.write(
      `POST /api/v1/login HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 5)}`,
    );
    await new Promise((r) => setTimeout(r, 300)); // the server has the request (headers parsed)
    const termAt = Date.now();
    const exited = leader.stop();
    // the drain would cut the request at 10 s: the takeover must come well before that
    await until('the other replica takes the leadership', () => tookLead(other, mode).length > 0, 8_000);
    const tookAfter = tookLead(other, mode)[0]! - termAt;
    assert.equal(leader.child.exitCode, null, 'the stopped replica is still draining its request');
    socket.write(body.slice(5)); // not end(): a half-closed connection gets no answer
    await answered;
    assert.match(answer, /^HTTP\/1\.1 200 /, `the request in flight got its answer: ${answer.slice(0, 200)}`);
    assert.equal(await exited, 0, `the stopped replica exits cleanly:\n${leader.stderr()}`);
    console.log(`      SIGTERM -> the other replica leads after ${tookAfter} ms (request still in flight)`);
  });
});
