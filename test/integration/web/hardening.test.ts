import assert from 'node:assert/strict';
import request from 'supertest';
import { setLogLevel } from '../../../src/lib/logger.js';
import { captureLog } from '../../helpers/log-capture.js';
import { signIn, webFixture, type WebFixture } from './helpers.js';

describe('web hardening: malformed URLs, audit view text', function () {
  this.timeout(60_000);
  let f: WebFixture;
  before(async () => {
    f = await webFixture();
  });
  after(() => f.close());

  it('400 for a malformed %-escape in a path parameter, logged without an error-level stack', async () => {
    const alice = await signIn(f.app, 'alice');
    setLogLevel('info');
    let status = 0;
    let body: { error?: { code?: string; field?: string } } = {};
    const records = await captureLog(async () => {
      const res = await alice.agent.get('/api/v1/devices/%E0%A4%A').set('Accept', 'application/json');
      status = res.status;
      body = res.body as typeof body;
    });
    setLogLevel('error');
    assert.equal(status, 400);
    assert.equal(body.error?.code, 'bad_request');
    assert.equal(body.error?.field, 'url');
    const loud = records.filter((r) => (r.level as number) >= 50 || JSON.stringify(r).includes('"stack"'));
    assert.deepEqual(loud, [], 'no error-level record and no stack for a client mistake');
    // Anonymous and page routes too.
    await request(f.app)
      .get('/devices/%E0%A4%A/revoke')
      .expect((r) => assert.notEqual(r.status, 500));
  });

  it('control and bidi characters in a failed sign-in name are marked in the audit view', async () => {
    const spoof = 'mallory\u202e\n2026-01-01 login admin ok\r\u2066x\u0007';
    await request(f.app)
      .post('/api/v1/login')
      .send({ name: spoof, password: 'wrong password here' })
      .expect(401);
    const admin = await signIn(f.app, 'admin');
    const res = await admin.agent.get('/api/v1/audit?action=login.failed').expect(200);
    const target = (res.body as { items: { target: string }[] }).items[0]!.target;
    assert.equal(target, 'mallory[U+202E][U+000A]2026-01-01 login admin ok[U+000D][U+2066]x[U+0007]');
    const page = await admin.agent.get('/admin/audit').expect(200);
    assert.ok(page.text.includes('mallory[U+202E][U+000A]2026-01-01 login admin ok'));
    assert.ok(!/[\u202e\u2066\u0007]/.test(page.text), 'no raw control or bidi character in the page');
  });
});
