/**
 * The CA-expiry banner (issue 12): a CA within a year of expiry is announced on every page an admin
 * sees, not only on the CA page; users see nothing; a rotation made while the app runs clears it.
 */
import assert from 'node:assert/strict';
import { rotateCa } from '../../../src/services/ca-rotation.js';
import { signIn, webFixture, type WebFixture } from './helpers.js';

const ADMIN_PAGES = [
  '/admin/certs',
  '/admin/users',
  '/admin/sessions',
  '/admin/audit',
  '/admin/crl',
  '/admin/gateways',
  '/admin/cluster',
  '/admin/backup',
  '/devices',
  '/tokens',
];
const BANNER = /<p class="warning ca-banner" role="alert" data-ca-banner>([^<]*)/;

describe('web: CA expiry banner on every admin page', function () {
  this.timeout(60_000);
  let f: WebFixture | undefined;
  afterEach(() => f?.close());

  it('a CA made for 200 days: every admin page carries the banner; the CA page lists it once, as its own warning', async () => {
    f = await webFixture({}, { 'ca.days': 200 });
    const admin = await signIn(f.app, 'admin');
    for (const page of ADMIN_PAGES) {
      const res = await admin.agent.get(page).expect(200);
      const m = BANNER.exec(res.text);
      assert.ok(m, `${page} has the banner`);
      assert.match(
        m[1]!,
        /the CA &quot;podgate CA&quot; expires in 19\d days \(\d{4}-\d\d-\d\d\): run &#x60;podgate ca rotate&#x60;/,
      );
    }
    const ca = await admin.agent.get('/admin/ca').expect(200);
    assert.doesNotMatch(ca.text, /data-ca-banner/, 'no banner above the CA page');
    assert.match(ca.text, /data-ca-warning>the CA &quot;podgate CA&quot; expires in 19\d days/);
    // JSON is not decorated.
    const api = await admin.agent.get('/api/v1/me').expect(200);
    assert.doesNotMatch(api.text, /ca-banner|expires in/);
  });

  it('users never see it; admins of a CA with years left do not either', async () => {
    f = await webFixture({}, { 'ca.days': 200 });
    const alice = await signIn(f.app, 'alice');
    assert.doesNotMatch((await alice.agent.get('/devices').expect(200)).text, /data-ca-banner/);
    await f.close();
    f = await webFixture(); // the default CA: 3650 days
    const admin = await signIn(f.app, 'admin');
    for (const page of ADMIN_PAGES)
      assert.doesNotMatch((await admin.agent.get(page).expect(200)).text, /data-ca-banner/, page);
  });

  it('a rotation to a fresh CA clears the banner of the running app', async () => {
    f = await webFixture({}, { 'ca.days': 200 });
    const admin = await signIn(f.app, 'admin');
    assert.match((await admin.agent.get('/admin/certs').expect(200)).text, BANNER);
    (f.ctx.config.ca as { days: number }).days = 3650;
    await rotateCa(f.ctx, { actor: 'test' });
    assert.doesNotMatch((await admin.agent.get('/admin/certs').expect(200)).text, /data-ca-banner/);
  });
});
