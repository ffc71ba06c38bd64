import assert from 'node:assert/strict';
import request from 'supertest';
import { hashToken } from '../../../src/web/auth.js';
import { newApiToken } from '../../../src/cli/commands/token.js';
import { csrfFromHtml, PASSWORD, signIn, webFixture, type WebFixture } from './helpers.js';

function setCookies(res: request.Response): string[] {
  const raw = res.headers['set-cookie'] as unknown;
  return Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
}
function sidCookie(res: request.Response, name = 'podgate_sid'): string | undefined {
  return setCookies(res).find((c) => c.startsWith(`${name}=`));
}
function sidValue(res: request.Response, name = 'podgate_sid'): string {
  return /=([^;]*)/.exec(sidCookie(res, name) ?? '')![1]!;
}

describe('web auth: sign-in, sessions, CSRF, tokens', function () {
  this.timeout(60_000);
  let f: WebFixture;
  beforeEach(async () => {
    f = await webFixture({ throttle: { perAccount: 3, perIp: 6 } });
  });
  afterEach(() => f?.close());

  it('200 sign-in sets an HttpOnly SameSite=Strict Path=/ cookie, plain name and no Secure over http', async () => {
    const res = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: PASSWORD })
      .expect(200);
    const cookie = sidCookie(res)!;
    assert.ok(cookie, 'podgate_sid cookie set');
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\//);
    assert.doesNotMatch(cookie, /Secure/);
    assert.doesNotMatch(cookie, /Domain=/i);
    assert.equal(res.body.user.name, 'alice');
    assert.equal(typeof res.body.csrfToken, 'string');
    assert.equal(res.body.user.passwordHash, undefined, 'never sends the password hash');
  });

  it('__Host- cookie with Secure (and HSTS) behind a trusted proxy that says https', async () => {
    await f.close();
    f = await webFixture({}, { 'web.trustProxy': true, 'web.trustedProxies': ['127.0.0.1', '::1'] });
    const res = await request(f.app)
      .post('/api/v1/login')
      .set('X-Forwarded-Proto', 'https')
      .send({ name: 'alice', password: PASSWORD })
      .expect(200);
    const cookie = sidCookie(res, '__Host-podgate_sid')!;
    assert.ok(cookie, '__Host- cookie set');
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /Path=\//);
    assert.doesNotMatch(cookie, /Domain=/i);
    assert.match(res.headers['strict-transport-security'] ?? '', /max-age=\d+/);
    // The same request over plain http gets neither.
    const plain = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: PASSWORD })
      .expect(200);
    assert.equal(plain.headers['strict-transport-security'], undefined);
    assert.ok(sidCookie(plain));
  });

  it('an untrusted X-Forwarded-Proto does not make the cookie Secure', async () => {
    const res = await request(f.app)
      .post('/api/v1/login')
      .set('X-Forwarded-Proto', 'https')
      .send({ name: 'alice', password: PASSWORD })
      .expect(200);
    assert.ok(sidCookie(res));
    assert.equal(res.headers['strict-transport-security'], undefined);
  });

  it('401 with the same generic message for unknown user, wrong password and disabled account', async () => {
    await f.ctx.users.disable({ actor: 'test', name: 'bob' });
    const cases = [
      { name: 'nobody', password: PASSWORD },
      { name: 'alice', password: 'wrong password!' },
      { name: 'bob', password: PASSWORD },
    ];
    for (const c of cases) {
      const res = await request(f.app).post('/api/v1/login').send(c).expect(401);
      assert.equal(res.body.error.message, 'invalid user name or password', c.name);
      assert.equal(sidCookie(res), undefined);
    }
    const failed = await f.ctx.store.listAudit({ action: 'login.failed' });
    assert.equal(failed.length, 3);
  });

  it('400 naming the field for a sign-in without a password', async () => {
    const res = await request(f.app).post('/api/v1/login').send({ name: 'alice' }).expect(400);
    assert.equal(res.body.error.field, 'password');
  });

  it('a new session id on every sign-in, and the old one stops working after logout', async () => {
    const first = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: PASSWORD })
      .expect(200);
    const second = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: PASSWORD })
      .expect(200);
    const sid1 = sidValue(first);
    const sid2 = sidValue(second);
    assert.notEqual(sid1, sid2);
    // Sending an old cookie to /login does not keep it: the answer sets a fresh one.
    const third = await request(f.app)
      .post('/api/v1/login')
      .set('Cookie', `podgate_sid=${sid1}`)
      .send({ name: 'alice', password: PASSWORD })
      .expect(200);
    assert.notEqual(sidValue(third), sid1);

    await request(f.app).get('/api/v1/me').set('Cookie', `podgate_sid=${sid2}`).expect(200);
    await request(f.app)
      .post('/api/v1/logout')
      .set('Cookie', `podgate_sid=${sid2}`)
      .set('X-CSRF-Token', second.body.csrfToken as string)
      .expect(204);
    await request(f.app).get('/api/v1/me').set('Cookie', `podgate_sid=${sid2}`).expect(401);
    // The session row is gone from the store, not just the cookie from the browser.
    await request(f.app).get('/api/v1/me').set('Cookie', `podgate_sid=${sid1}`).expect(200);
    assert.equal((await f.ctx.store.listAudit({ action: 'logout' })).length, 1);
    assert.ok((await f.ctx.store.listAudit({ action: 'login' })).length >= 3);
  });

  it('the session expires after the idle timeout', async () => {
    const alice = await signIn(f.app, 'alice');
    f.clock.now = new Date(f.clock.now.getTime() + 29 * 60_000);
    await alice.agent.get('/api/v1/me').expect(200);
    f.clock.now = new Date(f.clock.now.getTime() + 29 * 60_000);
    await alice.agent.get('/api/v1/me').expect(200); // each request refreshes the idle clock
    f.clock.now = new Date(f.clock.now.getTime() + 31 * 60_000);
    await alice.agent.get('/api/v1/me').expect(401);
    const page = await alice.agent.get('/devices').expect(303);
    assert.match(page.headers.location!, /^\/login\?next=%2Fdevices/);
  });

  it('the session expires at the absolute timeout even when used all the time', async () => {
    const alice = await signIn(f.app, 'alice');
    const start = f.clock.now.getTime();
    for (let t = 20; t < 12 * 60; t += 20) {
      f.clock.now = new Date(start + t * 60_000);
      await alice.agent.get('/api/v1/me').expect(200);
    }
    f.clock.now = new Date(start + 12 * 3_600_000 + 1000);
    await alice.agent.get('/api/v1/me').expect(401);
  });

  it('403 for a state change with the cookie but without (or with a wrong) CSRF token', async () => {
    const alice = await signIn(f.app, 'alice');
    const none = await alice.agent.post('/api/v1/devices').send({ name: 'laptop' }).expect(403);
    assert.match(none.body.error.message, /CSRF/);
    await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', 'x'.repeat(43))
      .send({ name: 'laptop' })
      .expect(403);
    await alice.agent.post('/api/v1/logout').expect(403);
    // Forms: the hidden field is required too.
    await alice.agent.post('/devices').type('form').send({ name: 'laptop' }).expect(403);
    await alice.agent.post('/logout').type('form').send({}).expect(403);
    assert.equal((await f.ctx.store.listCerts({})).total, 0, 'nothing was issued');
    // With the token from the page it works.
    const page = await alice.agent.get('/devices').expect(200);
    await alice.agent
      .post('/devices')
      .type('form')
      .send({ name: 'laptop', _csrf: csrfFromHtml(page.text) })
      .expect(201);
  });

  it('the sign-in form needs its own CSRF cookie + field pair', async () => {
    await request(f.app).post('/login').type('form').send({ name: 'alice', password: PASSWORD }).expect(403);
    const agent = request.agent(f.app);
    const form = await agent.get('/login').expect(200);
    const token = csrfFromHtml(form.text);
    await agent
      .post('/login')
      .type('form')
      .send({ name: 'alice', password: PASSWORD, _csrf: 'wrong' })
      .expect(403);
    const ok = await agent
      .post('/login')
      .type('form')
      .send({ name: 'alice', password: PASSWORD, _csrf: token, next: '/setup' })
      .expect(303);
    assert.equal(ok.headers.location, '/setup');
    await agent.get('/setup').expect(200);
  });

  it('does not follow an off-site next= after sign-in', async () => {
    const agent = request.agent(f.app);
    const token = csrfFromHtml((await agent.get('/login')).text);
    const res = await agent
      .post('/login')
      .type('form')
      .send({ name: 'alice', password: PASSWORD, _csrf: token, next: '//evil.example/' })
      .expect(303);
    assert.equal(res.headers.location, '/devices');
  });

  it('the sign-in form shows a generic error and keeps working without JavaScript', async () => {
    const agent = request.agent(f.app);
    const token = csrfFromHtml((await agent.get('/login')).text);
    const res = await agent
      .post('/login')
      .type('form')
      .send({ name: 'alice', password: 'nope nope nope', _csrf: token })
      .expect(401);
    assert.match(res.text, /invalid user name or password/);
  });

  it('429 after too many failures for one account (locked), even with the right password, until the window ends', async () => {
    for (let i = 0; i < 3; i++)
      await request(f.app)
        .post('/api/v1/login')
        .send({ name: 'alice', password: 'wrong password!' })
        .expect(401);
    const locked = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: PASSWORD })
      .expect(429);
    assert.match(locked.body.error.message, /too many sign-in attempts/);
    // Another account from the same address is not locked by alice's failures (per-IP limit is higher).
    await request(f.app).post('/api/v1/login').send({ name: 'bob', password: PASSWORD }).expect(200);
    f.clock.now = new Date(f.clock.now.getTime() + 16 * 60_000);
    await request(f.app).post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(200);
  });

  it('429 after too many failures from one address across accounts', async () => {
    for (let i = 0; i < 6; i++)
      await request(f.app)
        .post('/api/v1/login')
        .send({ name: `ghost${i}`, password: 'wrong password!' })
        .expect(401);
    await request(f.app).post('/api/v1/login').send({ name: 'bob', password: PASSWORD }).expect(429);
    // The form says the same.
    const agent = request.agent(f.app);
    const token = csrfFromHtml((await agent.get('/login')).text);
    const page = await agent
      .post('/login')
      .type('form')
      .send({ name: 'bob', password: PASSWORD, _csrf: token })
      .expect(429);
    assert.match(page.text, /too many sign-in attempts/);
  });

  it('Bearer tokens authenticate without CSRF; bad, unknown and disabled-user tokens get 401', async () => {
    const alice = (await f.ctx.store.getUserByName('alice'))!;
    const token = newApiToken();
    assert.match(token, /^pgt_[A-Za-z0-9_-]{43}$/);
    await f.ctx.store.createToken({ userId: alice!.id, name: 'ci', tokenHash: hashToken(token) });
    const me = await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${token}`).expect(200);
    assert.equal(me.body.user.name, 'alice');
    assert.equal(me.body.csrfToken, undefined);
    await request(f.app)
      .post('/api/v1/devices')
      .set('Authorization', `Bearer ${token}`)
      .send({ name: 'ci-runner' })
      .expect(201);
    assert.ok((await f.ctx.store.listTokens(alice!.id))[0]!.lastUsedAt, 'token use is recorded');
    await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${newApiToken()}`).expect(401);
    await request(f.app).get('/api/v1/me').set('Authorization', 'Bearer short').expect(401);
    await request(f.app)
      .get('/api/v1/me')
      .set('Authorization', `Basic ${Buffer.from('alice:x').toString('base64')}`)
      .expect(401);
    await f.ctx.users.disable({ actor: 'test', name: 'alice' });
    await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${token}`).expect(401);
  });

  it('a disabled account is signed out at once', async () => {
    const alice = await signIn(f.app, 'alice');
    const admin = await signIn(f.app, 'admin');
    await admin.agent
      .patch('/api/v1/users/alice')
      .set('X-CSRF-Token', admin.csrf)
      .send({ disabled: true })
      .expect(200);
    await alice.agent.get('/api/v1/me').expect(401);
    await request(f.app).post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(401);
  });

  it('401 JSON for the API and a redirect for pages when not signed in', async () => {
    const res = await request(f.app).get('/api/v1/devices').expect(401);
    assert.equal(res.body.error.code, 'unauthorized');
    const page = await request(f.app).get('/admin/certs').expect(303);
    assert.equal(page.headers.location, '/login?next=%2Fadmin%2Fcerts');
  });
});
