import assert from 'node:assert/strict';
import request from 'supertest';
import { signIn, webFixture, type WebFixture } from './helpers.js';

const PUBLIC = 'https://vpn.example.test';
const NONCE = 'a-nonce-of-sufficient-length';

describe('web: Check my connection', () => {
  let f: WebFixture;
  before(async () => {
    f = await webFixture(
      {},
      {
        'web.publicUrl': PUBLIC,
        'connectionCheck.serviceIpUrl': 'http://10.96.0.80',
        'connectionCheck.serviceDnsUrl': 'http://podgate-manager.podgate.svc.cluster.local',
      },
    );
  });
  after(() => f.close());

  it('the manager answers its own probe, without a session, CORS for publicUrl only', async () => {
    const res = await request(f.app)
      .get(`/connection-probe?nonce=${NONCE}`)
      .set('Origin', PUBLIC)
      .expect(200);
    assert.deepEqual(res.body, { podgate: 'reachable', nonce: NONCE });
    assert.equal(res.headers['access-control-allow-origin'], PUBLIC);
    const other = await request(f.app)
      .get(`/connection-probe?nonce=${NONCE}`)
      .set('Origin', 'https://evil.example')
      .expect(200);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  it('the devices page lists the checks and lets only their origins through its CSP', async () => {
    const alice = await signIn(f.app, 'alice');
    const res = await alice.agent.get('/devices').expect(200);
    assert.match(res.text, /data-check="tunnel" data-url="http:\/\/10\.140\.0\.1:8099\/connection-probe"/);
    assert.match(res.text, /data-check="service-ip" data-url="http:\/\/10\.96\.0\.80\/connection-probe"/);
    assert.match(res.text, /data-check="service-dns"/);
    assert.match(res.text, /id="fix-route"[^>]*hidden/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(
      csp,
      /connect-src 'self' http:\/\/10\.140\.0\.1:8099 http:\/\/10\.96\.0\.80 http:\/\/podgate-manager\.podgate\.svc\.cluster\.local$/,
    );
    assert.match(csp, /default-src 'self'/);
    // other pages keep the plain policy
    const setup = await alice.agent.get('/setup').expect(200);
    assert.doesNotMatch(String(setup.headers['content-security-policy']), /connect-src/);
  });
});
