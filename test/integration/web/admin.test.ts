import assert from 'node:assert/strict';
import request from 'supertest';
import { ClusterService } from '../../../src/cluster/index.js';
import { BrokenCluster, FakeSessions } from './fakes.js';
import { logger, setLogLevel } from '../../../src/lib/logger.js';
import { newApiToken } from '../../../src/cli/commands/token.js';
import { hashToken } from '../../../src/web/auth.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminKubeApi,
  adminRest,
  dropNamespace,
  ensureKubeDns,
  realCluster,
  uniqueName,
} from '../../helpers/real-cluster.js';
import { csrfFromHtml, PASSWORD, signIn, webFixture, type Client, type WebFixture } from './helpers.js';

const ADMIN_GETS = [
  '/api/v1/certs',
  '/api/v1/users',
  '/api/v1/sessions',
  '/api/v1/audit',
  '/api/v1/cluster',
  '/api/v1/crl',
  '/api/v1/gateways',
  '/api/v1/deploy',
];
const ADMIN_PAGES = [
  '/admin/certs',
  '/admin/users',
  '/admin/sessions',
  '/admin/audit',
  '/admin/crl',
  '/admin/gateways',
  '/admin/cluster',
];

describe('web admin: roles, certificates, users, sessions, audit, CRL, cluster', function () {
  this.timeout(60_000);
  let f: WebFixture;
  let admin: Client;
  let alice: Client;
  const sessions = new FakeSessions();
  // The cluster page and deploy button drive podgate's real ClusterService and KubeApi against the
  // shared real control plane, in a namespace of this suite's own.
  let cp: ControlPlane;
  const ns = uniqueName('web');

  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
    await ensureKubeDns(cp);
    f = await webFixture(
      (ctx) => ({
        sessions,
        cluster: new ClusterService({
          config: ctx.config,
          store: ctx.store,
          server: ctx.server,
          revocation: ctx.revocation,
          kube: () => adminKubeApi(cp),
          rolloutTimeoutMs: 60_000,
          pollMs: 100,
        }),
      }),
      { 'kubernetes.namespace': ns, 'kubernetes.nodePort': 30700, 'kubernetes.nodePortRange': '30000-31999' },
    );
    admin = await signIn(f.app, 'admin');
    alice = await signIn(f.app, 'alice');
    // Certificates to list: alice has 3, bob 2; one of alice's expires in 10 days.
    for (const [owner, name] of [
      ['alice', 'laptop'],
      ['alice', 'phone'],
      ['alice', 'tablet'],
      ['bob', 'laptop'],
      ['bob', 'desktop'],
    ] as const) {
      await f.ctx.devices.issue({ actor: 'test', owner, commonName: `${owner}.${name}`, deviceName: name });
    }
    f.clock.now = new Date(f.clock.now.getTime() + 1000);
  });
  after(async () => {
    await f?.close();
    if (cp) await dropNamespace(cp, ns);
  });

  it('403 for a developer on every admin endpoint and page', async () => {
    for (const p of ADMIN_GETS) {
      const res = await alice.agent.get(p).expect(403);
      assert.equal(res.body.error.code, 'forbidden', p);
    }
    for (const p of ADMIN_PAGES) await alice.agent.get(p).expect(403);
    const serial = (await f.ctx.store.listCerts({ search: 'bob.laptop' })).items[0]!.serial;
    await alice.agent
      .post(`/api/v1/certs/${serial}/revoke`)
      .set('X-CSRF-Token', alice.csrf)
      .send({ reason: 'keyCompromise' })
      .expect(403);
    await alice.agent
      .post('/api/v1/users')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'eve', password: PASSWORD })
      .expect(403);
    await alice.agent
      .patch('/api/v1/users/alice')
      .set('X-CSRF-Token', alice.csrf)
      .send({ role: 'admin' })
      .expect(403);
    await alice.agent.post('/api/v1/deploy').set('X-CSRF-Token', alice.csrf).expect(403);
    await alice.agent.post('/api/v1/sessions/7/disconnect').set('X-CSRF-Token', alice.csrf).expect(403);
    assert.equal((await f.ctx.store.getCert(serial))!.status, 'valid');
    assert.equal(await f.ctx.store.getUserByName('eve'), undefined);
    // The developer nav has no admin links.
    assert.doesNotMatch((await alice.agent.get('/devices')).text, /href="\/admin\/certs"/);
    assert.match((await admin.agent.get('/devices')).text, /href="\/admin\/certs"/);
  });

  it('lists certificates with search, status filter, expiring filter, sort and pagination (SQL side)', async () => {
    const all = await admin.agent.get('/api/v1/certs').expect(200);
    assert.equal(all.body.total, 6); // five devices and the VPN server's own certificate
    const byOwner = await admin.agent.get('/api/v1/certs?q=alice').expect(200);
    assert.equal(byOwner.body.total, 3);
    const sorted = await admin.agent
      .get('/api/v1/certs?sort=commonName&order=asc&perPage=2&page=2')
      .expect(200);
    assert.equal(sorted.body.items.length, 2);
    assert.equal(sorted.body.total, 6);
    assert.equal(typeof sorted.body.nextCursor, 'string', 'page 2 of 3 has a next page');
    assert.deepEqual(
      sorted.body.items.map((c: { commonName: string }) => c.commonName),
      ['alice.tablet', 'bob.desktop'],
    );
    const none = await admin.agent.get('/api/v1/certs?expiring=30').expect(200);
    assert.equal(none.body.total, 0);
    f.clock.now = new Date(f.clock.now.getTime() + (365 - 20) * 86_400_000);
    // A session would expire over such a jump; an API token does not.
    const token = newApiToken();
    await f.ctx.store.createToken({
      userId: (await f.ctx.store.getUserByName('admin'))!.id,
      name: 'test',
      tokenHash: hashToken(token),
    });
    const soon = await request(f.app)
      .get('/api/v1/certs?expiring=30')
      .set('Authorization', `Bearer ${token}`)
      .expect(200);
    assert.equal(soon.body.total, 5);
    f.clock.now = new Date(f.clock.now.getTime() - (365 - 20) * 86_400_000);
    const bad = await admin.agent.get('/api/v1/certs?sort=password').expect(400);
    assert.equal(bad.body.error.field, 'sort');
    const badPage = await admin.agent.get('/api/v1/certs?page=0').expect(400);
    assert.equal(badPage.body.error.field, 'page');
    const page = await admin.agent.get('/admin/certs?q=bob&sort=commonName&order=desc').expect(200);
    assert.ok(page.text.indexOf('bob.laptop') < page.text.indexOf('bob.desktop'), 'sorted descending');
    assert.doesNotMatch(page.text, /alice\.phone/);
    assert.match(page.text, /aria-sort="descending"/);
  });

  it('revokes any certificate with a reason after a confirmation page; 404 unknown, 400 bad reason', async () => {
    const serial = (await f.ctx.store.listCerts({ search: 'bob.laptop' })).items[0]!.serial;
    const confirm = await admin.agent.get(`/admin/certs/${serial}/revoke`).expect(200);
    assert.match(confirm.text, /Revoke bob\.laptop\?/);
    assert.match(confirm.text, /keyCompromise/);
    assert.equal((await f.ctx.store.getCert(serial))!.status, 'valid', 'the GET changes nothing');
    const bad = await admin.agent
      .post(`/api/v1/certs/${serial}/revoke`)
      .set('X-CSRF-Token', admin.csrf)
      .send({ reason: 'because' })
      .expect(400);
    assert.equal(bad.body.error.field, 'reason');
    await admin.agent
      .post(`/admin/certs/${serial}/revoke`)
      .type('form')
      .send({ reason: 'keyCompromise', _csrf: csrfFromHtml(confirm.text) })
      .expect(303);
    const cert = (await f.ctx.store.getCert(serial))!;
    assert.equal(cert!.status, 'revoked');
    assert.equal(cert!.revocationReason, 'keyCompromise');
    await admin.agent
      .post('/api/v1/certs/ABCDEF/revoke')
      .set('X-CSRF-Token', admin.csrf)
      .send({})
      .expect(404);
    const again = await admin.agent
      .post(`/api/v1/certs/${serial}/revoke`)
      .set('X-CSRF-Token', admin.csrf)
      .send({ reason: 'superseded' })
      .expect(409);
    assert.equal(again.body.error.code, 'conflict');
    const revoked = await admin.agent.get('/api/v1/certs?status=revoked').expect(200);
    assert.equal(revoked.body.total, 1);
  });

  it('creates users, changes roles, refuses bad names (400 naming the field) and duplicates (409)', async () => {
    const res = await admin.agent
      .post('/api/v1/users')
      .set('X-CSRF-Token', admin.csrf)
      .send({ name: 'dave', password: PASSWORD })
      .expect(201);
    assert.equal(res.body.user.role, 'user');
    assert.equal(res.body.user.passwordHash, undefined);
    for (const name of ['Dave', 'da ve', '-dave', '', '..']) {
      const bad = await admin.agent
        .post('/api/v1/users')
        .set('X-CSRF-Token', admin.csrf)
        .send({ name, password: PASSWORD })
        .expect(400);
      assert.equal(bad.body.error.field, 'name', name);
    }
    const shortPw = await admin.agent
      .post('/api/v1/users')
      .set('X-CSRF-Token', admin.csrf)
      .send({ name: 'erin', password: 'short' })
      .expect(400);
    assert.equal(shortPw.body.error.field, 'password');
    await admin.agent
      .post('/api/v1/users')
      .set('X-CSRF-Token', admin.csrf)
      .send({ name: 'dave', password: PASSWORD })
      .expect(409);
    const badRole = await admin.agent
      .patch('/api/v1/users/dave')
      .set('X-CSRF-Token', admin.csrf)
      .send({ role: 'root' })
      .expect(400);
    assert.equal(badRole.body.error.field, 'role');
    await admin.agent
      .patch('/api/v1/users/dave')
      .set('X-CSRF-Token', admin.csrf)
      .send({ role: 'admin' })
      .expect(200);
    assert.equal((await f.ctx.store.getUserByName('dave'))!.role, 'admin');
    await admin.agent
      .patch('/api/v1/users/nobody')
      .set('X-CSRF-Token', admin.csrf)
      .send({ role: 'admin' })
      .expect(404);
    await admin.agent
      .patch('/api/v1/users/admin')
      .set('X-CSRF-Token', admin.csrf)
      .send({ disabled: true })
      .expect(400);
    // The form creates users too.
    const page = await admin.agent.get('/admin/users').expect(200);
    await admin.agent
      .post('/admin/users')
      .type('form')
      .send({ name: 'frank', password: PASSWORD, role: 'user', _csrf: csrfFromHtml(page.text) })
      .expect(303);
    assert.ok(await f.ctx.store.getUserByName('frank'));
    await admin.agent
      .post('/admin/users/frank/role')
      .type('form')
      .send({ role: 'admin', _csrf: csrfFromHtml(page.text) })
      .expect(303);
    assert.equal((await f.ctx.store.getUserByName('frank'))!.role, 'admin');
  });

  it('disabling a user (confirmation page) revokes all their certificates and signs them out', async () => {
    await admin.agent.get('/admin/users/nobody/disable').expect(404);
    const confirm = await admin.agent.get('/admin/users/alice/disable').expect(200);
    assert.match(confirm.text, /alice\.laptop/);
    await admin.agent
      .post('/admin/users/alice/disable')
      .type('form')
      .send({ _csrf: csrfFromHtml(confirm.text) })
      .expect(303);
    assert.equal((await f.ctx.store.getUserByName('alice'))!.disabled, true);
    const valid = await f.ctx.store.listCerts({ search: 'alice.', status: 'valid' });
    assert.equal(valid.total, 0);
    await alice.agent.get('/api/v1/me').expect(401);
    const users = await admin.agent.get('/api/v1/users').expect(200);
    assert.equal(users.body.items.find((u: { name: string }) => u.name === 'alice').disabled, true);
    // Enabling gives the account back; the certificates stay revoked.
    const page = await admin.agent.get('/admin/users').expect(200);
    assert.match(page.text, /action="\/admin\/users\/alice\/enable"/);
    await admin.agent
      .post('/admin/users/alice/enable')
      .type('form')
      .send({ _csrf: csrfFromHtml(page.text) })
      .expect(303);
    assert.equal((await f.ctx.store.getUserByName('alice'))!.disabled, false);
    assert.equal((await f.ctx.store.listCerts({ search: 'alice.', status: 'valid' })).total, 0);
    await request(f.app).post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(200);
    await admin.agent
      .patch('/api/v1/users/alice')
      .set('X-CSRF-Token', admin.csrf)
      .send({ disabled: 'yes' })
      .expect(400);
  });

  it('lists live sessions and disconnects one (audited); unknown id 404', async () => {
    const list = await admin.agent.get('/api/v1/sessions').expect(200);
    assert.equal(list.body.items[0].commonName, 'alice.laptop');
    const page = await admin.agent.get('/admin/sessions').expect(200);
    assert.match(page.text, /198\.51\.100\.7/);
    assert.match(page.text, /Disconnect/);
    await admin.agent
      .post('/admin/sessions/7/disconnect')
      .type('form')
      .send({ _csrf: csrfFromHtml(page.text) })
      .expect(303);
    assert.equal(sessions.sessions.length, 0);
    await admin.agent.post('/api/v1/sessions/7/disconnect').set('X-CSRF-Token', admin.csrf).expect(404);
    assert.equal((await f.ctx.store.listAudit({ action: 'session.disconnect' })).length, 1);
  });

  it('the audit log shows sign-ins, sign-outs and failures', async () => {
    await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'bob', password: 'not the password' })
      .expect(401);
    const res = await admin.agent.get('/api/v1/audit').expect(200);
    const actions = res.body.items.map((e: { action: string }) => e.action);
    for (const a of [
      'login',
      'login.failed',
      'cert.revoke',
      'user.create',
      'user.disable',
      'session.disconnect',
    ])
      assert.ok(actions.includes(a), a);
    const filtered = await admin.agent.get('/api/v1/audit?action=login.failed').expect(200);
    assert.ok(filtered.body.items.every((e: { action: string }) => e.action === 'login.failed'));
    const page = await admin.agent.get('/admin/audit').expect(200);
    assert.match(page.text, /login\.failed/);
  });

  it('shows CRL status: number and next update', async () => {
    const crl = await admin.agent.get('/api/v1/crl').expect(200);
    assert.ok(crl.body.number >= 2);
    assert.ok(new Date(crl.body.nextUpdate).getTime() > Date.now());
    const page = await admin.agent.get('/admin/crl').expect(200);
    assert.match(page.text, new RegExp(`id="crl-number">${crl.body.number}<`));
  });

  it('cluster: discover shows the real values with sources; manifests download; deploy progress and status from the real server', async () => {
    const before = await admin.agent.get('/admin/cluster').expect(200);
    assert.match(before.text, /Nothing discovered yet/);
    await admin.agent
      .post('/admin/cluster/discover')
      .type('form')
      .send({ _csrf: csrfFromHtml(before.text) })
      .expect(303);
    const page = await admin.agent.get('/admin/cluster').expect(200);
    // What the real API server holds: the registered nodes, its own ServiceCIDR, kube-dns.
    assert.match(page.text, /10\.244\.0\.0\/24, 10\.244\.1\.0\/24/);
    assert.match(page.text, /node\.spec\.podCIDRs \(per-node ranges\)/);
    assert.match(page.text, /10\.96\.0\.0\/16/);
    assert.match(page.text, /ServiceCIDR objects \(networking\.k8s\.io\/v1\)/);
    assert.match(page.text, /10\.96\.0\.10/);
    assert.match(page.text, /172\.18\.0\.2, 172\.18\.0\.3/);
    const yaml = await admin.agent.get('/admin/cluster/manifests.yaml').expect(200);
    assert.match(yaml.headers['content-disposition']!, /attachment; filename="podgate-manifests.yaml"/);
    assert.match(
      yaml.text,
      new RegExp(`kind: Namespace\\n[\\s\\S]*name: ${ns}\\n[\\s\\S]*---\\n[\\s\\S]*kind: Service`),
    );

    const started = await admin.agent.post('/api/v1/deploy').set('X-CSRF-Token', admin.csrf).expect(202);
    assert.equal(started.body.state, 'running');
    await admin.agent.post('/api/v1/deploy').set('X-CSRF-Token', admin.csrf).expect(409);
    const running = await admin.agent.get('/admin/cluster').expect(200);
    assert.match(running.text, /http-equiv="refresh"/);
    const waitDone = async (): Promise<{ state: string; error: string; events: { message: string }[] }> => {
      for (let i = 0; i < 600; i++) {
        const d = (await admin.agent.get('/api/v1/deploy')).body as {
          state: string;
          error: string;
          events: { message: string }[];
        };
        if (d.state !== 'running') return d;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('deploy did not finish in 60 s');
    };
    const done = await waitDone();
    assert.equal(done.state, 'done', done.error);
    const messages = done.events.map((e) => e.message);
    assert.ok(
      messages.some((m) => /^discovered pods 10\.244\.0\.0\/24/.test(m)),
      messages.join('\n'),
    );
    assert.ok(messages.includes(`Namespace ${ns} created`), messages.join('\n'));
    assert.ok(messages.includes(`Deployment ${ns}/podgate-openvpn created`), messages.join('\n'));
    assert.ok(
      messages.some((m) => /rollout/.test(m)),
      messages.join('\n'),
    );
    assert.equal((await f.ctx.store.listAudit({ action: 'cluster.deploy' }))[0]!.result, 'ok');
    const shown = await admin.agent.get('/admin/cluster').expect(200);
    assert.match(shown.text, new RegExp(`Deployment ${ns}/podgate-openvpn created`));
    assert.match(shown.text, /deploy finished/);
    // The objects are really there.
    const dep = await adminRest(cp, 'GET', `/apis/apps/v1/namespaces/${ns}/deployments/podgate-openvpn`);
    assert.equal(dep.status, 200);
    // Live status is read only on request and shown as lines.
    const status = await admin.agent.get('/admin/cluster?status=1').expect(200);
    assert.match(status.text, new RegExp(`deployment ${ns}/podgate-openvpn: 1/1 ready`));
    const api = await admin.agent.get('/api/v1/cluster/status').expect(200);
    assert.ok(
      api.body.lines.some((l: string) => /endpoints: 10\.244\.[01]\.\d+:30030\/UDP/.test(l)),
      api.body.lines,
    );

    // A real refusal (an AppError) is shown: someone set the namespace to enforce PodSecurity baseline.
    await adminRest(
      cp,
      'PATCH',
      `/api/v1/namespaces/${ns}`,
      { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } },
      'application/merge-patch+json',
    );
    const level = logger.level;
    setLogLevel('fatal'); // the failure is logged at error level on purpose
    await admin.agent.post('/api/v1/deploy').set('X-CSRF-Token', admin.csrf).expect(202);
    const refused = await waitDone().finally(() => setLogLevel(level));
    assert.equal(refused.state, 'failed');
    assert.match(refused.error, new RegExp(`namespace ${ns} enforces PodSecurity "baseline"`));
    assert.match(refused.error, /kubectl label namespace/);
    assert.equal((await f.ctx.store.listAudit({ action: 'cluster.deploy' }))[0]!.result, 'error');
  });

  it('lists gateways from the store', async () => {
    const cert = await f.ctx.devices.issue({
      actor: 'test',
      owner: 'bob',
      commonName: 'office-gw',
      deviceName: 'office-gw',
      kind: 'gateway',
    });
    await f.ctx.store.upsertGateway({
      name: 'office-gw',
      target: 'root@192.0.2.10:22',
      certSerial: cert.cert.serial,
      status: 'ready',
      details: {},
      updatedAt: new Date(),
    });
    const res = await admin.agent.get('/api/v1/gateways').expect(200);
    assert.equal(res.body.items[0].name, 'office-gw');
    assert.match((await admin.agent.get('/admin/gateways').expect(200)).text, /root@192\.0\.2\.10:22/);
  });
});

describe('web admin: a deploy that fails with an error that is not an AppError', function () {
  this.timeout(30_000);
  let f: WebFixture;
  const cluster = new BrokenCluster(new Error('ECONNREFUSED 10.0.0.1:6443 token=secret'));
  before(async () => {
    f = await webFixture({ cluster });
  });
  after(() => f?.close());

  it('shows nothing of its message (a bug in podgate, which no API server can be made to cause)', async () => {
    const admin = await signIn(f.app, 'admin');
    const level = logger.level;
    setLogLevel('fatal'); // the failure is logged at error level on purpose
    await admin.agent.post('/api/v1/deploy').set('X-CSRF-Token', admin.csrf).expect(202);
    let d: { state: string; error: string } = { state: 'running', error: '' };
    for (let i = 0; i < 100 && d.state === 'running'; i++) {
      d = (await admin.agent.get('/api/v1/deploy')).body as typeof d;
      if (d.state === 'running') await new Promise((r) => setTimeout(r, 20));
    }
    setLogLevel(level);
    assert.equal(d.state, 'failed');
    assert.ok(d.error.length > 0);
    assert.doesNotMatch(JSON.stringify(d), /secret|ECONNREFUSED/);
    assert.equal((await f.ctx.store.listAudit({ action: 'cluster.deploy' }))[0]!.result, 'error');
  });
});

describe('web admin without a VPN server or cluster', function () {
  this.timeout(30_000);
  let f: WebFixture;
  before(async () => {
    f = await webFixture();
  });
  after(() => f?.close());

  it('says "server not connected" on the sessions page and 503 in the API; the cluster page says so too', async () => {
    const admin = await signIn(f.app, 'admin');
    const page = await admin.agent.get('/admin/sessions').expect(200);
    assert.match(page.text, /Server not connected/);
    const api = await admin.agent.get('/api/v1/sessions').expect(503);
    assert.equal(api.body.error.code, 'not_connected');
    assert.match((await admin.agent.get('/admin/cluster').expect(200)).text, /Cluster not connected/);
    await admin.agent.post('/api/v1/deploy').set('X-CSRF-Token', admin.csrf).expect(503);
  });
});
