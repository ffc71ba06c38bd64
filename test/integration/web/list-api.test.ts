import assert from 'node:assert/strict';
import request from 'supertest';
import { FakeSessions } from './fakes.js';
import { signIn, webFixture, type Client, type WebFixture } from './helpers.js';

interface Page {
  items: Record<string, unknown>[];
  total: number;
  nextCursor: string | null;
}

/** Every list endpoint of the API; each answers one shape and pages by `limit` and `cursor`. */
const LISTS = [
  '/api/v1/certs',
  '/api/v1/devices',
  '/api/v1/users',
  '/api/v1/sessions',
  '/api/v1/audit',
  '/api/v1/gateways',
  '/api/v1/tokens',
];

describe('web API: one list shape ({items, total, nextCursor}, limit + cursor) and /api/v1/ca', function () {
  this.timeout(60_000);
  let f: WebFixture;
  let admin: Client;
  const sessions = new FakeSessions();

  before(async () => {
    f = await webFixture({ sessions });
    admin = await signIn(f.app, 'admin');
    for (const name of ['laptop', 'phone', 'tablet'])
      await f.ctx.devices.issue({
        actor: 'test',
        owner: 'admin',
        commonName: `admin.${name}`,
        deviceName: name,
      });
    // three office gateways (rows as `podgate gateway provision` leaves them)
    for (const name of ['gw-a', 'gw-b', 'gw-c']) {
      const issued = await f.ctx.devices.issue({
        actor: 'test',
        owner: 'bob',
        commonName: name,
        deviceName: name,
        kind: 'gateway',
      });
      await f.ctx.store.upsertGateway({
        name,
        target: 'root@192.0.2.10:22',
        certSerial: issued.cert.serial,
        status: 'ready',
        details: {},
        updatedAt: new Date(),
      });
    }
    for (const name of ['ci', 'deploy', 'backup'])
      await admin.agent.post('/api/v1/tokens').set('X-CSRF-Token', admin.csrf).send({ name }).expect(201);
  });
  after(() => f?.close());

  /** Follows nextCursor from the first page with `limit`; returns every page. */
  async function walk(path: string, limit: number): Promise<Page[]> {
    const pages: Page[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const url: string = `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res: request.Response = await admin.agent.get(url).set('Accept', 'application/json');
      assert.equal(res.status, 200, `${url}: ${res.text}`);
      pages.push(res.body as Page);
      cursor = (res.body as Page).nextCursor;
      assert.ok(pages.length < 100, `${path}: the cursor chain ends`);
    } while (cursor);
    return pages;
  }

  for (const path of LISTS) {
    it(`${path}: {items, total, nextCursor}; walking by limit=2 gives each item once, total items`, async () => {
      const whole = (await admin.agent.get(`${path}?limit=200`).expect(200)).body as Page;
      assert.deepEqual(Object.keys(whole).sort(), ['items', 'nextCursor', 'total'], JSON.stringify(whole));
      assert.ok(Array.isArray(whole.items));
      assert.equal(whole.nextCursor, null, 'all on one page');
      assert.equal(whole.total, whole.items.length);
      assert.ok(whole.total >= 1, `${path} lists something here`);
      const pages = await walk(path, 2);
      const walked = pages.flatMap((p) => p.items);
      assert.equal(pages.length, Math.max(1, Math.ceil(whole.total / 2)));
      for (const p of pages) assert.equal(p.total, whole.total);
      assert.deepEqual(walked, whole.items, 'the pages together are the whole list, in order');
    });
  }

  it('certificates page by the store keyset: devices issued while walking do not shift the next page', async () => {
    const first = (await admin.agent.get('/api/v1/certs?limit=2').expect(200)).body as Page;
    assert.ok(first.nextCursor);
    for (const name of ['walk1', 'walk2'])
      await f.ctx.devices.issue({
        actor: 'test',
        owner: 'admin',
        commonName: `admin.${name}`,
        deviceName: name,
      });
    const second = (
      await admin.agent
        .get(`/api/v1/certs?limit=2&cursor=${encodeURIComponent(first.nextCursor)}`)
        .expect(200)
    ).body as Page;
    const seen = new Set(first.items.map((c) => c.serial));
    assert.ok(
      second.items.every((c) => !seen.has(c.serial)),
      'the second page starts after the first one ended, not at an offset the new certificates pushed',
    );
    const newest = (await admin.agent.get('/api/v1/certs?limit=2').expect(200)).body as Page;
    assert.deepEqual(
      newest.items.map((c) => c.name),
      ['walk2', 'walk1'],
      'the new certificates are at the top of the default order',
    );
    assert.equal(second.total, first.total + 2);
  });

  it('the audit log pages by its newest-first key: entries appended while walking do not shift a page', async () => {
    const first = (await admin.agent.get('/api/v1/audit?limit=3').expect(200)).body as Page;
    for (let i = 0; i < 5; i++)
      await f.ctx.store.appendAudit({
        actor: 'test',
        action: 'test.noise',
        target: `n${i}`,
        result: 'ok',
        details: {},
      });
    const second = (
      await admin.agent
        .get(`/api/v1/audit?limit=3&cursor=${encodeURIComponent(first.nextCursor!)}`)
        .expect(200)
    ).body as Page;
    const lastId = first.items[first.items.length - 1]!.id as number;
    assert.ok(
      second.items.every((e) => (e.id as number) < lastId),
      'the second page starts after the first one ended, not at an offset the new entries pushed',
    );
    assert.equal(second.items[0]!.id, lastId - 1);
    const filtered = (await admin.agent.get('/api/v1/audit?action=test.noise&limit=2').expect(200))
      .body as Page;
    assert.equal(filtered.total, 5);
    assert.equal(filtered.items.length, 2);
  });

  it('400 naming the field for a bad limit or a cursor this API did not hand out', async () => {
    for (const path of LISTS) {
      const big = await admin.agent.get(`${path}?limit=201`).expect(400);
      assert.equal(big.body.error.field, 'limit', path);
      const zero = await admin.agent.get(`${path}?limit=0`).expect(400);
      assert.equal(zero.body.error.field, 'limit', path);
      const bad = await admin.agent.get(`${path}?cursor=not-a-cursor`).expect(400);
      assert.equal(bad.body.error.field, 'cursor', path);
      assert.match(bad.body.error.message, /pass nextCursor back/);
    }
  });

  it('GET /api/v1/ca: the CA status for admins, JSON errors for everyone else; /admin/api/ca redirects there', async () => {
    const ca = await admin.agent.get('/api/v1/ca').expect(200);
    assert.equal(ca.body.current.commonName, 'podgate CA');
    assert.match(ca.body.current.keyId, /^[0-9a-f:]+$/i);
    assert.ok(Array.isArray(ca.body.onPreviousCa));
    // errors are JSON even for a browser that prefers HTML
    const anonymous = await request(f.app).get('/api/v1/ca').set('Accept', 'text/html').expect(401);
    assert.match(anonymous.headers['content-type'] ?? '', /application\/json/);
    assert.equal(typeof anonymous.body.error.message, 'string');
    const alice = await signIn(f.app, 'alice');
    const refused = await alice.agent.get('/api/v1/ca').set('Accept', 'text/html').expect(403);
    assert.match(refused.headers['content-type'] ?? '', /application\/json/);
    // the old address (never linked from the pages) keeps working as a permanent redirect
    const old = await admin.agent.get('/admin/api/ca').expect(308);
    assert.equal(old.headers.location, '/api/v1/ca');
    const followed = await admin.agent.get('/admin/api/ca').redirects(1).expect(200);
    assert.deepEqual(followed.body, ca.body);
  });
});
