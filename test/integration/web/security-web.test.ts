import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { hashToken } from '../../../src/web/auth.js';
import { startServer, type RunningServer } from '../../../src/web/server.js';
import { clusterServiceFor } from '../../../src/cluster/index.js';
import { csrfFromHtml, PASSWORD, signIn, webFixture, type WebFixture } from './helpers.js';

/** Issue 11, web items: each case failed on the code before the fix (see the commit message). */

function tally(statuses: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

/** The app on a real loopback socket, so that parallel requests really overlap. */
async function listen(f: WebFixture): Promise<{ url: string; server: Server }> {
  const server = createServer(f.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function login(url: string, name: string, password: string): Promise<number> {
  return fetch(`${url}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });
}

describe('web security (issue 11)', function () {
  this.timeout(120_000);
  let f: WebFixture;
  afterEach(() => f?.close());

  describe('item 2: the sign-in throttle holds against parallel guesses', () => {
    let server: Server | undefined;
    afterEach(() => server?.close());

    it('100 parallel sign-ins for one account (99 wrong, 1 right): at most 5 are evaluated', async () => {
      f = await webFixture();
      const s = await listen(f);
      server = s.server;
      const tries = Array.from({ length: 100 }, (_, i) => (i === 50 ? PASSWORD : `wrong password ${i}`));
      const statuses = await Promise.all(tries.map((pw) => login(s.url, 'alice', pw)));
      const counts = tally(statuses);
      const evaluated = (counts[200] ?? 0) + (counts[401] ?? 0);
      assert.ok(evaluated <= 5, `evaluated ${evaluated} (statuses ${JSON.stringify(counts)})`);
      assert.equal(counts[429], 100 - evaluated, JSON.stringify(counts));
      assert.ok((await f.ctx.store.listAudit({ action: 'login.failed' })).length <= 5);
    });

    it('100 parallel sign-ins for 100 accounts from one address: at most 20 are evaluated', async () => {
      f = await webFixture();
      const s = await listen(f);
      server = s.server;
      const statuses = await Promise.all(
        Array.from({ length: 100 }, (_, i) => login(s.url, `ghost${i}`, 'wrong password!')),
      );
      const counts = tally(statuses);
      assert.ok((counts[401] ?? 0) <= 20, JSON.stringify(counts));
      assert.equal((counts[401] ?? 0) + (counts[429] ?? 0), 100, JSON.stringify(counts));
    });
  });

  describe('item 9: growing delays instead of a lock, forwarded addresses only from trusted proxies', () => {
    it('five wrong passwords delay the account by seconds (not 15 minutes), and the delay grows', async () => {
      f = await webFixture();
      for (let i = 0; i < 5; i++)
        await request(f.app)
          .post('/api/v1/login')
          .send({ name: 'alice', password: 'wrong password!' })
          .expect(401);
      const held = await request(f.app)
        .post('/api/v1/login')
        .send({ name: 'alice', password: PASSWORD })
        .expect(429);
      assert.match(held.body.error.message, /too many sign-in attempts, try again in 30 seconds/);
      f.clock.now = new Date(f.clock.now.getTime() + 31_000);
      // One more try after the delay; it fails, so the next one waits twice as long.
      await request(f.app)
        .post('/api/v1/login')
        .send({ name: 'alice', password: 'wrong again!!' })
        .expect(401);
      f.clock.now = new Date(f.clock.now.getTime() + 31_000);
      await request(f.app).post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(429);
      f.clock.now = new Date(f.clock.now.getTime() + 30_000);
      await request(f.app).post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(200);
    });

    it('guesses from elsewhere do not keep the admin out of an address they signed in from before', async () => {
      f = await webFixture({}, { 'web.trustProxy': true, 'web.trustedProxies': ['127.0.0.1', '::1'] });
      const home = '198.51.100.7';
      const attacker = '203.0.113.9';
      await request(f.app)
        .post('/api/v1/login')
        .set('X-Forwarded-For', home)
        .send({ name: 'admin', password: PASSWORD })
        .expect(200);
      f.clock.now = new Date(f.clock.now.getTime() + 86_400_000); // the next day
      for (let i = 0; i < 5; i++)
        await request(f.app)
          .post('/api/v1/login')
          .set('X-Forwarded-For', attacker)
          .send({ name: 'admin', password: `guess ${i} guess` })
          .expect(401);
      await request(f.app)
        .post('/api/v1/login')
        .set('X-Forwarded-For', attacker)
        .send({ name: 'admin', password: PASSWORD })
        .expect(429);
      // Another new address waits too; the admin's usual address does not.
      await request(f.app)
        .post('/api/v1/login')
        .set('X-Forwarded-For', '192.0.2.44')
        .send({ name: 'admin', password: PASSWORD })
        .expect(429);
      await request(f.app)
        .post('/api/v1/login')
        .set('X-Forwarded-For', home)
        .send({ name: 'admin', password: PASSWORD })
        .expect(200);
    });

    it('X-Forwarded-For from a connection that is not a trusted proxy is ignored (22 spoofed addresses hit the per-address limit)', async () => {
      f = await webFixture({}, { 'web.trustProxy': true, 'web.trustedProxies': ['10.9.9.9'] });
      const statuses: number[] = [];
      for (let i = 0; i < 22; i++) {
        const res = await request(f.app)
          .post('/api/v1/login')
          .set('X-Forwarded-For', `198.51.100.${i + 1}`)
          .send({ name: `ghost${i}`, password: 'wrong password!' });
        statuses.push(res.status);
      }
      assert.deepEqual(tally(statuses), { 401: 20, 429: 2 });
      const rows = await f.ctx.store.listAudit({ action: 'login.failed' });
      assert.ok(rows.every((r) => !String((r.details as { ip?: string }).ip).startsWith('198.51.100.')));
    });

    it('X-Forwarded-For from a trusted proxy gives each client its own address', async () => {
      f = await webFixture({}, { 'web.trustProxy': true, 'web.trustedProxies': ['127.0.0.0/8', '::1'] });
      for (let i = 0; i < 22; i++)
        await request(f.app)
          .post('/api/v1/login')
          .set('X-Forwarded-For', `198.51.100.${i + 1}`)
          .send({ name: `ghost${i}`, password: 'wrong password!' })
          .expect(401);
      const ips = (await f.ctx.store.listAudit({ action: 'login.failed', limit: 50 })).map(
        (r) => (r.details as { ip: string }).ip,
      );
      assert.equal(new Set(ips).size, 22);
    });
  });

  describe('item 3: sessions end on a password, role or disabled change', () => {
    it('a role change from the web signs the user out everywhere', async () => {
      f = await webFixture();
      const alice = await signIn(f.app, 'alice');
      const admin = await signIn(f.app, 'admin');
      await admin.agent
        .patch('/api/v1/users/alice')
        .set('X-CSRF-Token', admin.csrf)
        .send({ role: 'admin' })
        .expect(200);
      await alice.agent.get('/api/v1/me').expect(401);
    });

    it('a password change through the service (web and CLI share it) signs the user out everywhere', async () => {
      f = await webFixture();
      const alice = await signIn(f.app, 'alice');
      const bob = await signIn(f.app, 'bob');
      await f.ctx.users.setPassword({ actor: 'test', name: 'alice', password: 'a brand new secret 42' });
      await alice.agent.get('/api/v1/me').expect(401);
      await bob.agent.get('/api/v1/me').expect(200);
    });
  });

  describe('item 4: login CSRF on POST /api/v1/login', () => {
    beforeEach(async () => {
      f = await webFixture();
    });

    it('415 for a form-encoded or text/plain sign-in, and no session', async () => {
      const form = await request(f.app)
        .post('/api/v1/login')
        .type('form')
        .send({ name: 'alice', password: PASSWORD })
        .expect(415);
      assert.equal(form.headers['set-cookie'], undefined);
      await request(f.app)
        .post('/api/v1/login')
        .set('Content-Type', 'text/plain')
        .send(JSON.stringify({ name: 'alice', password: PASSWORD }))
        .expect(415);
      assert.equal((await f.ctx.store.listAudit({ action: 'login' })).length, 0);
    });

    it('403 when the browser says the request comes from another site; 200 from this site or a script', async () => {
      const res = await request(f.app)
        .post('/api/v1/login')
        .set('Host', 'podgate.test')
        .set('Origin', 'https://evil.example')
        .send({ name: 'alice', password: PASSWORD })
        .expect(403);
      assert.match(res.body.error.message, /another site/);
      await request(f.app)
        .post('/api/v1/login')
        .set('Host', 'podgate.test')
        .set('Origin', 'http://podgate.test')
        .send({ name: 'alice', password: PASSWORD })
        .expect(200);
      await request(f.app).post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(200);
    });
  });

  describe('item 5: API tokens expire, have a name and last use, can be listed and deleted, die with a disable', () => {
    beforeEach(async () => {
      f = await webFixture();
    });

    it('create (secret once, 90-day default), use, list (no secret), expire', async () => {
      const alice = await signIn(f.app, 'alice');
      const created = await alice.agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', alice.csrf)
        .send({ name: 'ci' })
        .expect(201);
      const secret = created.body.secret as string;
      assert.match(secret, /^pgt_[A-Za-z0-9_-]{43}$/);
      assert.equal(created.body.token.name, 'ci');
      const days =
        (new Date(created.body.token.expiresAt as string).getTime() - f.clock.now.getTime()) / 86_400_000;
      assert.equal(Math.round(days), 90);
      await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${secret}`).expect(200);
      const list = await alice.agent.get('/api/v1/tokens').expect(200);
      assert.equal(list.body.items.length, 1);
      assert.ok(list.body.items[0].lastUsedAt, 'last use recorded');
      assert.ok(!list.text.includes(secret) && !list.text.includes(hashToken(secret)));
      const week = await alice.agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', alice.csrf)
        .send({ name: 'short', days: 7 })
        .expect(201);
      f.clock.now = new Date(f.clock.now.getTime() + 8 * 86_400_000);
      await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${week.body.secret}`).expect(401);
      await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${secret}`).expect(200);
      f.clock.now = new Date(f.clock.now.getTime() + 83 * 86_400_000);
      const expired = await request(f.app)
        .get('/api/v1/me')
        .set('Authorization', `Bearer ${secret}`)
        .expect(401);
      assert.match(expired.body.error.message, /expired/);
    });

    it('400 naming the field for a bad name or lifetime; nothing is stored', async () => {
      const alice = await signIn(f.app, 'alice');
      const bad = await alice.agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', alice.csrf)
        .send({ name: 'ci', days: 0 })
        .expect(400);
      assert.equal(bad.body.error.field, 'days');
      const badName = await alice.agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', alice.csrf)
        .send({ name: 'A B' })
        .expect(400);
      assert.equal(badName.body.error.field, 'name');
      await alice.agent.post('/api/v1/tokens').send({ name: 'ci' }).expect(403); // CSRF
      assert.equal((await f.ctx.store.listTokens((await f.ctx.store.getUserByName('alice'))!.id)).length, 0);
    });

    it("users delete their own tokens only (404 for someone else's); admins list and delete everyone's", async () => {
      const alice = await signIn(f.app, 'alice');
      const bob = await signIn(f.app, 'bob');
      const admin = await signIn(f.app, 'admin');
      const a = await alice.agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', alice.csrf)
        .send({ name: 'a1' })
        .expect(201);
      const b = await bob.agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', bob.csrf)
        .send({ name: 'b1' })
        .expect(201);
      await bob.agent.delete(`/api/v1/tokens/${a.body.token.id}`).set('X-CSRF-Token', bob.csrf).expect(404);
      const bobs = await bob.agent.get('/api/v1/tokens?all=1').expect(200);
      assert.deepEqual(
        bobs.body.items.map((t: { name: string }) => t.name),
        ['b1'],
        'all=1 means nothing for a developer',
      );
      const all = await admin.agent.get('/api/v1/tokens?all=1').expect(200);
      assert.deepEqual(
        all.body.items.map((t: { user: string; name: string }) => `${t.user}/${t.name}`),
        ['alice/a1', 'bob/b1'],
      );
      await admin.agent
        .delete(`/api/v1/tokens/${b.body.token.id}`)
        .set('X-CSRF-Token', admin.csrf)
        .expect(204);
      await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${b.body.secret}`).expect(401);
      await alice.agent
        .delete(`/api/v1/tokens/${a.body.token.id}`)
        .set('X-CSRF-Token', alice.csrf)
        .expect(204);
      await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${a.body.secret}`).expect(401);
      assert.equal((await f.ctx.store.listAudit({ action: 'token.delete' })).length, 2);
    });

    it('a token of a disabled user stays dead when the user is enabled again', async () => {
      const alice = (await f.ctx.store.getUserByName('alice'))!;
      const secret = 'pgt_' + 'x'.repeat(43);
      await f.ctx.store.createToken({ userId: alice!.id, name: 'ci', tokenHash: hashToken(secret) });
      await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${secret}`).expect(200);
      const admin = await signIn(f.app, 'admin');
      await admin.agent
        .patch('/api/v1/users/alice')
        .set('X-CSRF-Token', admin.csrf)
        .send({ disabled: true })
        .expect(200);
      await admin.agent
        .patch('/api/v1/users/alice')
        .set('X-CSRF-Token', admin.csrf)
        .send({ disabled: false })
        .expect(200);
      await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${secret}`).expect(401);
      assert.equal((await f.ctx.store.listTokens(alice!.id)).length, 0);
    });

    it('the API tokens page lists, creates (secret shown once) and deletes', async () => {
      const agent = request.agent(f.app);
      await agent.post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(200);
      const page = await agent.get('/tokens').expect(200);
      assert.match(page.text, /No tokens yet/);
      const made = await agent
        .post('/tokens')
        .type('form')
        .send({ name: 'laptop-cli', days: '30', _csrf: csrfFromHtml(page.text) })
        .expect(201);
      const secret = /id="token-secret">(pgt_[^<]+)</.exec(made.text)?.[1];
      assert.ok(secret, 'secret shown on the page');
      await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${secret}`).expect(200);
      const again = await agent.get('/tokens').expect(200);
      assert.ok(!again.text.includes(secret!), 'shown once only');
      const id = /data-token="(\d+)"/.exec(again.text)![1];
      await agent
        .post(`/tokens/${id}/delete`)
        .type('form')
        .send({ _csrf: csrfFromHtml(again.text) })
        .expect(303);
      await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${secret}`).expect(401);
      const bad = await agent
        .post('/tokens')
        .type('form')
        .send({ name: 'x', days: '99999', _csrf: csrfFromHtml(again.text) })
        .expect(400);
      assert.match(bad.text, /days must be at most 3650/);
    });
  });

  describe('item 10: one password rule: at least 12 characters, not a well-known password', () => {
    beforeEach(async () => {
      f = await webFixture();
    });

    for (const [password, why] of [
      ['aaaaaaaaaa', /12 to 1024 characters/],
      ['aaaaaaaaaaaa', /at least 5 different characters/],
      ['elevenchars', /12 to 1024 characters/],
      ['qwertyuiop12', /well-known password/],
      ['Password1234!', /well-known password/],
    ] as const) {
      it(`400 for "${password}"`, async () => {
        const admin = await signIn(f.app, 'admin');
        const res = await admin.agent
          .post('/api/v1/users')
          .set('X-CSRF-Token', admin.csrf)
          .send({ name: 'erin', password })
          .expect(400);
        assert.equal(res.body.error.field, 'password');
        assert.match(res.body.error.message, why);
        assert.equal(await f.ctx.store.getUserByName('erin'), undefined);
      });
    }

    it('201 for a 12-character uncommon password; the setPassword path applies the same rule', async () => {
      const admin = await signIn(f.app, 'admin');
      await admin.agent
        .post('/api/v1/users')
        .set('X-CSRF-Token', admin.csrf)
        .send({ name: 'erin', password: 'tulip-Kx9-vw' })
        .expect(201);
      await assert.rejects(
        f.ctx.users.setPassword({ actor: 'test', name: 'erin', password: 'password123456' }),
        /well-known/,
      );
    });
  });

  describe('item 11: no-store on signed-in answers; the manifests download is audited', () => {
    it('Cache-Control: no-store on /api/v1/me, pages, sign-in and errors', async () => {
      f = await webFixture();
      const login = await request(f.app)
        .post('/api/v1/login')
        .send({ name: 'alice', password: PASSWORD })
        .expect(200);
      assert.equal(login.headers['cache-control'], 'no-store');
      const alice = await signIn(f.app, 'alice');
      for (const path of ['/api/v1/me', '/api/v1/devices', '/devices', '/setup', '/tokens']) {
        const res = await alice.agent.get(path).expect(200);
        assert.equal(res.headers['cache-control'], 'no-store', path);
      }
      const denied = await request(f.app).get('/api/v1/me').set('Authorization', 'Bearer nope').expect(401);
      assert.equal(denied.headers['cache-control'], 'no-store');
    });

    it('the manifests download (page and API) has no-store and leaves an audit row', async () => {
      // The real ClusterService: building manifests needs no API server when the routes are configured.
      f = await webFixture((ctx) => ({ cluster: clusterServiceFor(ctx, process.env) }), {
        'vpn.routes.pods': ['10.244.0.0/16'],
        'vpn.routes.services': ['10.96.0.0/16'],
      });
      const admin = await signIn(f.app, 'admin');
      const page = await admin.agent.get('/admin/cluster/manifests.yaml').expect(200);
      assert.equal(page.headers['cache-control'], 'no-store');
      const api = await admin.agent.get('/api/v1/cluster/manifests').expect(200);
      assert.equal(api.headers['cache-control'], 'no-store');
      const rows = await f.ctx.store.listAudit({ action: 'cluster.manifests' });
      assert.equal(rows.length, 2);
      assert.equal(rows[0]!.actor, 'admin');
    });
  });

  describe('item 12: /metrics only with a token or on its own listener', () => {
    let running: RunningServer | undefined;
    afterEach(async () => {
      await running?.close();
      running = undefined;
    });

    it('404 on the public listener by default, for anyone', async () => {
      f = await webFixture();
      await request(f.app).get('/metrics').expect(404);
      const admin = await signIn(f.app, 'admin');
      await admin.agent.get('/metrics').expect(404);
    });

    it('with web.metricsTokenFile: 401 without or with a wrong token, 200 with it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'podgate-metrics-'));
      const file = join(dir, 'metrics-token');
      writeFileSync(file, 'scrape-token-0123456789\n', { mode: 0o600 });
      try {
        f = await webFixture({}, { 'web.metricsTokenFile': file });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      await request(f.app).get('/metrics').expect(401);
      await request(f.app).get('/metrics').set('Authorization', 'Bearer scrape-token-0123456780').expect(401);
      const ok = await request(f.app)
        .get('/metrics')
        .set('Authorization', 'Bearer scrape-token-0123456789')
        .expect(200);
      assert.match(ok.text, /podgate_http_requests_total/);
    });

    it('with web.metricsPort: served there without a token, still 404 on the public listener', async () => {
      f = await webFixture({}, { 'web.metricsPort': 0 });
      running = await startServer({ ctx: f.ctx, host: '127.0.0.1', port: 0 });
      assert.ok(running.metricsUrl, 'metrics listener started');
      assert.equal((await fetch(`${running.url}/metrics`)).status, 404);
      const res = await fetch(running.metricsUrl!);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /podgate_certificates/);
      assert.equal((await fetch(running.metricsUrl!.replace('/metrics', '/api/v1/me'))).status, 404);
    });
  });
});
