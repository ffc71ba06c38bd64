import assert from 'node:assert/strict';
import request from 'supertest';
import { webFixture, signIn, type WebFixture } from './helpers.js';

describe('web smoke', function () {
  this.timeout(60_000);
  let f: WebFixture;
  before(async () => {
    f = await webFixture();
  });
  after(() => f?.close());

  it('renders the pages', async () => {
    const res = await request(f.app).get('/login').expect(200);
    assert.match(res.text, /Sign in/);
    const admin = await signIn(f.app, 'admin');
    for (const p of [
      '/devices',
      '/setup',
      '/admin/users',
      '/admin/certs',
      '/admin/sessions',
      '/admin/audit',
      '/admin/crl',
      '/admin/gateways',
      '/admin/cluster',
    ]) {
      const r = await admin.agent.get(p);
      assert.equal(r.status, 200, `${p}: ${r.text.slice(0, 500)}`);
    }
    const dev = await admin.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', admin.csrf)
      .send({ name: 'laptop' });
    assert.equal(dev.status, 201, dev.text);
    const r = await admin.agent.get('/devices');
    assert.match(r.text, /laptop/);
  });
});
