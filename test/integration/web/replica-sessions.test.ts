/**
 * Sessions of several server replicas in the web app: the page gets a Replica column, the API carries
 * `replica` and the `<cid>@<pod>` ids, /metrics counts sessions per replica. The provider is the web
 * tests' FakeSessions (fakes.ts says what it does not model) holding sessions as the cluster provider
 * (cluster/replica-sessions.ts, on the real API server in replica-status-real.test.ts) returns them.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { FakeSessions } from './fakes.js';
import { signIn, webFixture, type WebFixture } from './helpers.js';

describe('web: sessions of several server replicas', function () {
  this.timeout(60_000);
  let f: WebFixture;
  const sessions = new FakeSessions();
  const at = new Date(Date.now() - 60_000);
  sessions.sessions = [
    ['0@podgate-openvpn-a', 'podgate-openvpn-a', 'alice.laptop'],
    ['1@podgate-openvpn-a', 'podgate-openvpn-a', 'bob.phone'],
    ['0@podgate-openvpn-b', 'podgate-openvpn-b', 'carol.laptop'],
  ].map(([cid, replica, cn]) => ({
    cid: cid!,
    replica: replica!,
    commonName: cn!,
    realAddress: '198.51.100.7:51000',
    virtualAddress: '10.140.0.2',
    bytesIn: 1,
    bytesOut: 2,
    connectedSince: at,
  }));

  before(async () => {
    f = await webFixture({ sessions });
    writeFileSync(join(f.dir, 'metrics-token'), 'metrics-token-for-the-test\n', { mode: 0o600 });
  });
  after(() => f?.close());

  it('the page names each replica; the API carries it; a disconnect by `<cid>@<pod>` ends that session only', async () => {
    const admin = await signIn(f.app, 'admin');
    const page = await admin.agent.get('/admin/sessions').expect(200);
    assert.match(page.text, /<th scope="col">Replica<\/th>/);
    assert.equal(
      (page.text.match(/<td data-label="Replica"><code class="small">podgate-openvpn-a</g) ?? []).length,
      2,
    );
    assert.match(page.text, /action="\/admin\/sessions\/0@podgate-openvpn-b\/disconnect"/);
    const api = await admin.agent.get('/api/v1/sessions').expect(200);
    assert.deepEqual(
      (api.body.items as { cid: string; replica: string }[]).map((s) => [s.cid, s.replica]),
      sessions.sessions.map((s) => [s.cid, s.replica]),
    );
    await admin.agent
      .delete(`/api/v1/sessions/${encodeURIComponent('0@podgate-openvpn-b')}`)
      .set('X-CSRF-Token', admin.csrf)
      .expect(204);
    assert.deepEqual(
      sessions.sessions.map((s) => s.cid),
      ['0@podgate-openvpn-a', '1@podgate-openvpn-a'],
    );
  });

  it('/metrics: the total and one series per replica', async () => {
    const m = await webFixture({ sessions }, { 'web.metricsTokenFile': join(f.dir, 'metrics-token') });
    try {
      const res = await request(m.app)
        .get('/metrics')
        .set('Authorization', 'Bearer metrics-token-for-the-test')
        .expect(200);
      assert.match(res.text, /^podgate_vpn_sessions 2$/m);
      assert.match(res.text, /^podgate_vpn_replica_sessions\{replica="podgate-openvpn-a"\} 2$/m);
      assert.doesNotMatch(res.text, /podgate_vpn_replica_sessions\{replica="podgate-openvpn-b"\}/);
    } finally {
      await m.close();
    }
  });
});
