import assert from 'node:assert/strict';
import request from 'supertest';
import { API_OPERATIONS } from '../../../src/web/api-operations.js';
import { openApiPath } from '../../../src/web/openapi.js';
import { FakeSessions } from './fakes.js';
import { signIn, webFixture, type Client, type WebFixture } from './helpers.js';

/**
 * Calls every operation of the OpenAPI document once on a real app (SQLite file, real services; live
 * sessions from FakeSessions) and lets the fixture's contract hook validate each answer (status, media
 * type, JSON body) against the document with Ajv. The cluster operations answer 503 here (no cluster:
 * their error shape is what is checked); their 200s are checked by admin.test.ts against the real
 * control plane through the same hook.
 */
describe('OpenAPI document: each operation answered once, validated against the document', function () {
  this.timeout(120_000);
  let f: WebFixture;
  let admin: Client;
  let alice: Client;
  const sessions = new FakeSessions();

  before(async () => {
    f = await webFixture({ sessions });
    admin = await signIn(f.app, 'admin');
    alice = await signIn(f.app, 'alice');
  });
  after(() => f?.close());

  it('every operation, signed in as a user or an admin', async () => {
    const a = (m: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string) =>
      admin.agent[m](path).set('X-CSRF-Token', admin.csrf);
    const u = (m: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string) =>
      alice.agent[m](path).set('X-CSRF-Token', alice.csrf);

    await request(f.app).get('/api/v1/openapi.json').expect(200);
    await u('get', '/api/v1/me').expect(200);
    const issued = await u('post', '/api/v1/devices')
      .set('Accept', 'application/json')
      .send({ name: 'laptop' })
      .expect(201);
    const serial = (issued.body as { device: { serial: string } }).device.serial;
    await u('post', '/api/v1/devices').send({ name: 'phone', keyType: 'ec-p256' }).expect(201);
    await u('get', '/api/v1/devices').expect(200);
    await u('get', `/api/v1/devices/${serial}`).expect(200);
    const renewed = await u('post', `/api/v1/devices/${serial}/renew`)
      .set('Accept', 'application/json')
      .send({})
      .expect(201);
    const newSerial = (renewed.body as { device: { serial: string } }).device.serial;
    await u('post', '/api/v1/devices/import-link').send({ name: 'tablet' }).expect(201);
    await u('delete', `/api/v1/devices/${newSerial}`).expect(200);
    const token = await u('post', '/api/v1/tokens').send({ name: 'ci', days: 7 }).expect(201);
    await u('get', '/api/v1/tokens').expect(200);
    await u('delete', `/api/v1/tokens/${(token.body as { token: { id: number } }).token.id}`).expect(204);
    await u('get', '/api/v1/sessions/history').expect(200);
    await u('get', '/api/v1/access/check?user=alice&destination=10.96.0.10').expect(200);
    await u('get', '/api/v1/access/mine').expect(200);

    await a('get', '/api/v1/certs?status=valid&sort=commonName&order=asc').expect(200);
    await a('get', `/api/v1/certs/${serial}`).expect(200);
    await a('post', `/api/v1/certs/${serial}/revoke`).send({ reason: 'keyCompromise' }).expect(200);
    await a('get', '/api/v1/users').expect(200);
    await a('post', '/api/v1/users')
      .send({ name: 'carol', password: 'a long and fine password 42' })
      .expect(201);
    await a('patch', '/api/v1/users/carol').send({ role: 'admin' }).expect(200);
    await a('get', '/api/v1/sessions').expect(200);
    await a('post', '/api/v1/sessions/7/disconnect').expect(204);
    sessions.sessions = [
      {
        cid: '8',
        commonName: 'alice.phone',
        realAddress: '198.51.100.8:51000',
        virtualAddress: '10.140.0.3',
        bytesIn: 1,
        bytesOut: 2,
        connectedSince: new Date(),
      },
    ];
    await a('delete', '/api/v1/sessions/8').expect(204);
    await a('get', '/api/v1/audit?limit=5').expect(200);
    await a('get', '/api/v1/ca').expect(200);
    await a('get', '/api/v1/crl').expect(200);
    await a('get', '/api/v1/gateways').expect(200);
    await a('post', '/api/v1/backup').send({ passphrase: 'twelve chars or more' }).expect(200);
    await a('get', '/api/v1/cluster').expect(200);
    await a('get', '/api/v1/deploy').expect(200);
    for (const [m, p] of [
      ['post', '/api/v1/cluster/discover'],
      ['get', '/api/v1/cluster/status'],
      ['get', '/api/v1/cluster/manifests'],
      ['post', '/api/v1/deploy'],
    ] as const)
      await a(m, p).expect(503);
    await a('post', '/api/v1/groups').send({ name: 'team-a', description: 'A' }).expect(201);
    await a('get', '/api/v1/groups').expect(200);
    await a('get', '/api/v1/groups/team-a').expect(200);
    await a('post', '/api/v1/groups/team-a/members').send({ user: 'alice' }).expect(201);
    await a('put', '/api/v1/access?dryRun=false')
      .send({
        rules: [
          {
            name: 'dns',
            subjects: [{ kind: 'group', name: 'team-a' }],
            destinations: [{ kind: 'cidr', cidr: '10.96.0.10/32' }],
          },
        ],
      })
      .expect(200);
    await a('get', '/api/v1/access').expect(200);
    await a('get', '/api/v1/access?format=yaml').expect(200);
    await a('get', '/api/v1/access/who?destination=10.96.0.10').expect(200);
    await a('get', '/api/v1/access/users/alice').expect(200);
    await a('delete', '/api/v1/groups/team-a/members/alice').expect(200);
    await a('delete', '/api/v1/groups/team-a').expect(204);
    await u('post', '/api/v1/logout').expect(204);

    // errors: the one shape, for bad input, no sign-in, admins only, unknown objects
    await request(f.app).get('/api/v1/devices').expect(401);
    await u('get', '/api/v1/certs').expect(401); // alice signed out above
    const bob = await signIn(f.app, 'bob');
    await bob.agent.get('/api/v1/users').expect(403);
    await bob.agent.post('/api/v1/devices').set('X-CSRF-Token', bob.csrf).send({ name: 'A B' }).expect(400);
    await bob.agent.get('/api/v1/devices/ABCDEF').expect(404);
    await a('post', '/api/v1/users')
      .send({ name: 'carol', password: 'another fine password 42' })
      .expect(409);

    assert.deepEqual(f.api.violations, []);
    const answered = new Set(f.api.checked.map((c) => c.operation));
    const missing = Object.keys(API_OPERATIONS)
      .map((k) => {
        const [m, p] = k.split(' ');
        return `${m} ${openApiPath(p!)}`;
      })
      .filter((k) => !answered.has(k));
    assert.deepEqual(missing, [], 'operations this suite did not call');
    for (const status of [400, 401, 403, 404, 409])
      assert.ok(
        f.api.checked.some((c) => c.status === status),
        `no ${status} answer was checked`,
      );
  });
});
