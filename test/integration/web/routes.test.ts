import assert from 'node:assert/strict';
import request from 'supertest';
import { signIn, webFixture, type Client, type WebFixture } from './helpers.js';

type Who = 'anonymous' | 'user' | 'admin';
interface Case {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  /** Expected status for each caller (state changes carry a valid CSRF token). */
  expect: Record<Who, number>;
}

/** Every route of the app, by caller: 401/redirect when anonymous, 403 for developers on admin routes. */
const CASES: Case[] = [
  { method: 'get', path: '/healthz', expect: { anonymous: 200, user: 200, admin: 200 } },
  { method: 'get', path: '/readyz', expect: { anonymous: 200, user: 200, admin: 200 } },
  { method: 'get', path: '/crl.pem', expect: { anonymous: 200, user: 200, admin: 200 } },
  // Off on the public listener unless a metrics token is configured (issue 11, item 12).
  { method: 'get', path: '/metrics', expect: { anonymous: 404, user: 404, admin: 404 } },
  { method: 'get', path: '/tokens', expect: { anonymous: 303, user: 200, admin: 200 } },
  { method: 'get', path: '/api/v1/tokens', expect: { anonymous: 401, user: 200, admin: 200 } },
  { method: 'delete', path: '/api/v1/tokens/999', expect: { anonymous: 401, user: 404, admin: 404 } },
  { method: 'post', path: '/api/v1/tokens', expect: { anonymous: 401, user: 400, admin: 400 } },
  { method: 'get', path: '/login', expect: { anonymous: 200, user: 303, admin: 303 } },
  { method: 'get', path: '/', expect: { anonymous: 303, user: 303, admin: 303 } },
  { method: 'get', path: '/devices', expect: { anonymous: 303, user: 200, admin: 200 } },
  { method: 'get', path: '/setup', expect: { anonymous: 303, user: 200, admin: 200 } },
  { method: 'get', path: '/devices/AB/revoke', expect: { anonymous: 303, user: 404, admin: 404 } },
  { method: 'get', path: '/api/v1/me', expect: { anonymous: 401, user: 200, admin: 200 } },
  { method: 'get', path: '/api/v1/devices', expect: { anonymous: 401, user: 200, admin: 200 } },
  { method: 'get', path: '/api/v1/devices/AB', expect: { anonymous: 401, user: 404, admin: 404 } },
  { method: 'delete', path: '/api/v1/devices/AB', expect: { anonymous: 401, user: 404, admin: 404 } },
  { method: 'post', path: '/api/v1/devices', expect: { anonymous: 401, user: 400, admin: 400 } },
  { method: 'get', path: '/admin', expect: { anonymous: 303, user: 403, admin: 303 } },
  ...['certs', 'users', 'sessions', 'audit', 'crl', 'gateways', 'cluster'].map((p): Case => ({
    method: 'get',
    path: `/admin/${p}`,
    expect: { anonymous: 303, user: 403, admin: 200 },
  })),
  { method: 'get', path: '/admin/certs/AB/revoke', expect: { anonymous: 303, user: 403, admin: 404 } },
  { method: 'post', path: '/admin/certs/AB/revoke', expect: { anonymous: 303, user: 403, admin: 404 } },
  { method: 'post', path: '/admin/users', expect: { anonymous: 303, user: 403, admin: 400 } },
  { method: 'post', path: '/admin/users/nobody/role', expect: { anonymous: 303, user: 403, admin: 404 } },
  { method: 'get', path: '/admin/users/nobody/disable', expect: { anonymous: 303, user: 403, admin: 404 } },
  { method: 'post', path: '/admin/users/nobody/disable', expect: { anonymous: 303, user: 403, admin: 404 } },
  { method: 'post', path: '/admin/users/nobody/enable', expect: { anonymous: 303, user: 403, admin: 404 } },
  { method: 'post', path: '/admin/sessions/1/disconnect', expect: { anonymous: 303, user: 403, admin: 503 } },
  { method: 'post', path: '/admin/cluster/discover', expect: { anonymous: 303, user: 403, admin: 503 } },
  { method: 'post', path: '/admin/cluster/deploy', expect: { anonymous: 303, user: 403, admin: 503 } },
  { method: 'get', path: '/admin/cluster/manifests.yaml', expect: { anonymous: 303, user: 403, admin: 503 } },
  { method: 'get', path: '/api/v1/certs', expect: { anonymous: 401, user: 403, admin: 200 } },
  { method: 'get', path: '/api/v1/certs/AB', expect: { anonymous: 401, user: 403, admin: 404 } },
  { method: 'post', path: '/api/v1/certs/AB/revoke', expect: { anonymous: 401, user: 403, admin: 404 } },
  { method: 'get', path: '/api/v1/users', expect: { anonymous: 401, user: 403, admin: 200 } },
  { method: 'post', path: '/api/v1/users', expect: { anonymous: 401, user: 403, admin: 400 } },
  { method: 'patch', path: '/api/v1/users/nobody', expect: { anonymous: 401, user: 403, admin: 400 } },
  { method: 'get', path: '/api/v1/sessions', expect: { anonymous: 401, user: 403, admin: 503 } },
  {
    method: 'post',
    path: '/api/v1/sessions/1/disconnect',
    expect: { anonymous: 401, user: 403, admin: 503 },
  },
  { method: 'delete', path: '/api/v1/sessions/1', expect: { anonymous: 401, user: 403, admin: 503 } },
  { method: 'get', path: '/api/v1/audit', expect: { anonymous: 401, user: 403, admin: 200 } },
  { method: 'get', path: '/api/v1/crl', expect: { anonymous: 401, user: 403, admin: 200 } },
  { method: 'get', path: '/api/v1/gateways', expect: { anonymous: 401, user: 403, admin: 200 } },
  { method: 'get', path: '/api/v1/cluster', expect: { anonymous: 401, user: 403, admin: 200 } },
  { method: 'post', path: '/api/v1/cluster/discover', expect: { anonymous: 401, user: 403, admin: 503 } },
  { method: 'get', path: '/api/v1/cluster/status', expect: { anonymous: 401, user: 403, admin: 503 } },
  { method: 'get', path: '/api/v1/cluster/manifests', expect: { anonymous: 401, user: 403, admin: 503 } },
  { method: 'get', path: '/api/v1/deploy', expect: { anonymous: 401, user: 403, admin: 200 } },
  { method: 'post', path: '/api/v1/deploy', expect: { anonymous: 401, user: 403, admin: 503 } },
  { method: 'get', path: '/api/v1/nothing', expect: { anonymous: 404, user: 404, admin: 404 } },
];

describe('web routes by role (every route: anonymous, developer, admin)', function () {
  this.timeout(60_000);
  let f: WebFixture;
  const clients: Partial<Record<Who, Client>> = {};
  before(async () => {
    f = await webFixture();
    clients.user = await signIn(f.app, 'alice');
    clients.admin = await signIn(f.app, 'admin');
  });
  after(() => f?.close());

  for (const who of ['anonymous', 'user', 'admin'] as const) {
    it(`answers as expected for ${who}`, async () => {
      const problems: string[] = [];
      for (const c of CASES) {
        const client = clients[who];
        const base = client ? client.agent : request(f.app);
        let req = base[c.method](c.path).set(
          'Accept',
          c.path.startsWith('/api/') ? 'application/json' : 'text/html',
        );
        if (client && c.method !== 'get') req = req.set('X-CSRF-Token', client.csrf).send({});
        const res = await req;
        const want = c.expect[who];
        if (res.status !== want)
          problems.push(`${c.method.toUpperCase()} ${c.path}: ${res.status}, expected ${want}`);
      }
      assert.deepEqual(problems, []);
    });
  }

  it('state changes by a signed-in caller without the CSRF token are refused first (403), whatever the route', async () => {
    for (const c of CASES.filter((x) => x.method !== 'get')) {
      if (c.path.startsWith('/api/v1/nothing')) continue;
      const res = await clients.admin!.agent[c.method](c.path).send({});
      assert.equal(res.status, 403, `${c.method} ${c.path}`);
    }
  });
});
