import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { csrfFromHtml, signIn, webFixture, type WebFixture } from './helpers.js';

const DAY = 86_400_000;

describe('web: device renewal, expiry warnings and podgate_certificates_expiring', function () {
  this.timeout(60_000);
  let f: WebFixture;
  let tmp: string;
  const TOKEN = 'metrics-token-for-renewal-test';
  const scrape = () => request(f.app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
  beforeEach(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'podgate-renew-web-'));
    writeFileSync(join(tmp, 'metrics-token'), `${TOKEN}\n`, { mode: 0o600 });
    f = await webFixture(
      {},
      { 'vpn.certDays': 40, 'vpn.expiryWarningDays': 30, 'web.metricsTokenFile': join(tmp, 'metrics-token') },
    );
  });
  afterEach(async () => {
    await f.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a user renews their own device through the API and the page; others get 404; metrics count expiring', async () => {
    let alice = await signIn(f.app, 'alice');
    const created = await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', alice.csrf)
      .set('Accept', 'application/json')
      .send({ name: 'laptop' })
      .expect(201);
    const oldSerial = (created.body as { device: { serial: string } }).device.serial;

    let metrics = await scrape();
    assert.match(metrics.text, /^podgate_certificates_expiring 0$/m);
    assert.match(metrics.text, /^podgate_ca_expiry_seconds \d+/m);
    f.clock.now = new Date(f.clock.now.getTime() + 15 * DAY); // 25 days left: inside the 30-day window
    metrics = await scrape();
    assert.match(metrics.text, /^podgate_certificates_expiring 1$/m);
    alice = await signIn(f.app, 'alice'); // the old session idled out while the clock moved
    const page = await alice.agent.get('/devices').expect(200);
    assert.match(page.text, /badge warn">soon/);
    assert.match(page.text, new RegExp(`action="/devices/${oldSerial}/renew"`));

    // bob cannot renew alice's device, and without the CSRF token nobody can.
    const bob = await signIn(f.app, 'bob');
    await bob.agent.post(`/api/v1/devices/${oldSerial}/renew`).set('X-CSRF-Token', bob.csrf).expect(404);
    await alice.agent.post(`/api/v1/devices/${oldSerial}/renew`).expect(403);
    assert.equal((await f.ctx.store.listCerts({ kind: 'client' })).total, 1);

    const renewed = await alice.agent
      .post(`/api/v1/devices/${oldSerial}/renew`)
      .set('X-CSRF-Token', alice.csrf)
      .set('Accept', 'application/json')
      .expect(201);
    const body = renewed.body as {
      device: { serial: string; name: string };
      profile: string;
      filename: string;
    };
    assert.equal(body.device.name, 'laptop');
    assert.equal(body.filename, 'alice.laptop.ovpn');
    assert.match(body.profile, /BEGIN CERTIFICATE/);
    assert.equal(renewed.headers['cache-control'], 'no-store');
    metrics = await scrape();
    assert.match(
      metrics.text,
      /^podgate_certificates_expiring 1$/m,
      'the old one still counts until revoked',
    );

    const list = await alice.agent.get('/api/v1/devices').expect(200);
    const items = (list.body as { items: { serial: string; renewedBy: string | null }[] }).items;
    assert.equal(items.find((d) => d.serial === oldSerial)?.renewedBy, body.device.serial);

    // The page form: renewing the new one answers with the profile download.
    const html = (await alice.agent.get('/devices').expect(200)).text;
    assert.match(html, /data-renewed/);
    const res = await alice.agent
      .post(`/devices/${body.device.serial}/renew`)
      .type('form')
      .send({ _csrf: csrfFromHtml(html) })
      .expect(201);
    assert.match(String(res.headers['content-disposition']), /alice\.laptop\.ovpn/);
    assert.equal((await f.ctx.store.listCerts({ kind: 'client', status: 'valid' })).total, 3);
  });
});
