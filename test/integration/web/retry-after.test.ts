/**
 * Every refusal that passes with time says when to come back: `Retry-After` (whole seconds) on the
 * sign-in throttle's 429 (API and form), the per-user issue rate's 429 (API and devices form), with
 * the value the refusal's own clock gives.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { csrfFromHtml, PASSWORD, signIn, webFixture, type WebFixture } from './helpers.js';

/** The sign-in throttle's default delay before the first attempt past the budget (login-throttle.ts). */
const FIRST_DELAY_SECONDS = 30;

describe('web: Retry-After on 429', function () {
  this.timeout(60_000);
  let f: WebFixture;
  afterEach(() => f?.close());

  async function failSignIns(n: number): Promise<void> {
    for (let i = 0; i < n; i++)
      await request(f.app)
        .post('/api/v1/login')
        .send({ name: 'alice', password: 'wrong password!' })
        .expect(401);
  }

  it('throttled sign-in (API): 429 with Retry-After, the seconds the message names, counting down with the clock', async () => {
    f = await webFixture({ throttle: { perAccount: 3, perIp: 20 } });
    await failSignIns(3);
    const locked = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: PASSWORD })
      .expect(429);
    assert.equal(locked.headers['retry-after'], String(FIRST_DELAY_SECONDS));
    assert.match(locked.body.error.message, new RegExp(`try again in ${FIRST_DELAY_SECONDS} seconds`));

    f.clock.now = new Date(f.clock.now.getTime() + 20_500);
    const later = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: PASSWORD })
      .expect(429);
    assert.equal(later.headers['retry-after'], '10', 'rounded up, never 0');

    // Waiting what it said is enough.
    f.clock.now = new Date(f.clock.now.getTime() + 10_000);
    await request(f.app).post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(200);
  });

  it('throttled sign-in (form): the 429 page carries Retry-After too', async () => {
    f = await webFixture({ throttle: { perAccount: 3, perIp: 20 } });
    await failSignIns(3);
    const agent = request.agent(f.app);
    const token = csrfFromHtml((await agent.get('/login')).text);
    const page = await agent
      .post('/login')
      .type('form')
      .send({ name: 'alice', password: PASSWORD, _csrf: token })
      .expect(429);
    assert.equal(page.headers['retry-after'], String(FIRST_DELAY_SECONDS));
    assert.match(page.text, /too many sign-in attempts/);
  });

  it('a 401 and a 200 carry no Retry-After', async () => {
    f = await webFixture({ throttle: { perAccount: 3, perIp: 20 } });
    const bad = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: 'wrong password!' })
      .expect(401);
    assert.equal(bad.headers['retry-after'], undefined);
    const ok = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'bob', password: PASSWORD })
      .expect(200);
    assert.equal(ok.headers['retry-after'], undefined);
  });

  it('per-user issue rate (API and form): 429 with Retry-After until the oldest issue is an hour old', async () => {
    f = await webFixture({}, { 'devices.issuesPerHour': 2 });
    const alice = await signIn(f.app, 'alice');
    const create = (name: string) =>
      alice.agent.post('/api/v1/devices').set('X-CSRF-Token', alice.csrf).send({ name, keyType: 'ec-p256' });
    const start = f.clock.now.getTime();
    await create('one').expect(201);
    f.clock.now = new Date(start + 10 * 60_000);
    await create('two').expect(201);
    f.clock.now = new Date(start + 15 * 60_000);
    const refused = await create('three').expect(429);
    // The first issue leaves the sliding hour 45 minutes from now.
    assert.equal(refused.headers['retry-after'], String(45 * 60));
    assert.match(refused.body.error.message, /devices\.issuesPerHour/);
    assert.equal(
      (await f.ctx.store.listCerts({ ownerId: (await f.ctx.store.getUserByName('alice'))!.id })).items.length,
      2,
    );

    const page = await alice.agent
      .post('/devices')
      .type('form')
      .send({ name: 'four', keyType: 'ec-p256', _csrf: alice.csrf })
      .expect(429);
    assert.equal(page.headers['retry-after'], String(45 * 60));

    // Past the hour the rate admits again (a new session: the first one has gone idle meanwhile).
    f.clock.now = new Date(start + 60 * 60_000 + 1000);
    const back = await signIn(f.app, 'alice');
    await back.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', back.csrf)
      .send({ name: 'five', keyType: 'ec-p256' })
      .expect(201);
  });
});
