import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { followImportLink, restImport } from '../../helpers/connect-client.js';
import request from 'supertest';
import { PASSWORD, webFixture, type Client, type WebFixture } from './helpers.js';
import { TokenService } from '../../../src/services/tokens.js';
import { importBase } from '../../../src/services/import-links.js';
import { profileInline } from '../../helpers/browser.js';

interface Live {
  f: WebFixture;
  server: Server;
  base: string;
  close(): Promise<void>;
}

/** The real app on a loopback port, so the Connect-like client speaks real HTTP to it. */
async function live(overrides: Record<string, unknown> = {}): Promise<Live> {
  const f = await webFixture({ throttle: { perAccount: 3, perIp: 50, baseDelayMs: 60_000 } }, overrides);
  const server = await new Promise<Server>((resolve) => {
    const s = f.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    f,
    server,
    base,
    async close() {
      await new Promise((r) => server.close(r));
      await f.close();
    },
  };
}

/** Signs in against the listening server, so links are built on its address. */
async function signIn(base: string, name: string): Promise<Client> {
  const agent = request.agent(base);
  const res = await agent.post('/api/v1/login').send({ name, password: PASSWORD }).expect(200);
  return { agent, csrf: (res.body as { csrfToken: string }).csrfToken };
}

async function certsOf(f: WebFixture, user: string): Promise<number> {
  const u = (await f.ctx.store.getUserByName(user))!;
  return (await f.ctx.store.listCerts({ ownerId: u!.id })).total;
}

function certCn(profile: string): string {
  const pem = profileInline(profile, 'cert') ?? '';
  return pem.length > 0 ? 'present' : 'missing';
}

describe('OpenVPN Connect: one-use import links', function () {
  this.timeout(30_000);
  let l: Live;
  beforeEach(async () => {
    l = await live();
  });
  afterEach(async () => l.close());

  it('a link is fetched once as application/x-openvpn-profile, a second fetch is refused and issues nothing', async () => {
    const alice = await signIn(l.base, 'alice');
    const made = await alice.agent
      .post('/api/v1/devices/import-link')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'phone' })
      .expect(201);
    const { link, qr } = made.body as { link: string; qr: string };
    assert.match(
      link,
      /^openvpn:\/\/import-profile\/http:\/\/127\.0\.0\.1:\d+\/import\/profile\?token=[\w-]{43}$/,
    );
    assert.match(qr, /^data:image\/png;base64,/);
    assert.equal(await certsOf(l.f, 'alice'), 0, 'making the link issues nothing');
    // the token is stored hashed only
    const token = /token=([\w-]+)/.exec(link)![1]!;
    assert.equal(await l.f.ctx.store.findImportLinkByHash(token), undefined);

    const first = await followImportLink(link);
    assert.ok(first.ok, `first fetch: ${first.ok ? '' : first.body}`);
    assert.match(first.contentType, /^application\/x-openvpn-profile/);
    assert.equal(first.headers.get('cache-control'), 'no-store');
    assert.equal(certCn(first.profile), 'present');
    assert.match(first.profile, /<key>/, 'the key pair was made for this fetch');
    assert.equal(await certsOf(l.f, 'alice'), 1);
    assert.ok(await l.f.ctx.store.getValidCertByCommonName('alice.phone'));

    const second = await followImportLink(link);
    assert.equal(second.ok, false);
    assert.equal(second.status, 410);
    assert.match(second.ok ? '' : second.body, /already used/);
    assert.equal(await certsOf(l.f, 'alice'), 1, 'the second fetch issued nothing');

    const audit = await l.f.ctx.store.listAudit({ limit: 10 });
    const created = audit.find((a) => a.action === 'import-link.create')!;
    assert.equal(created.actor, 'alice');
    assert.equal(created.details.ip, '127.0.0.1');
    const fetched = audit.find((a) => a.action === 'import-link.fetch')!;
    assert.equal(fetched.details.ip, '127.0.0.1');
    assert.ok(audit.some((a) => a.action === 'import-link.refused' && a.details.reason === 'used'));
  });

  it('410 for an expired link, 404 for an unknown one; nothing issued', async () => {
    const alice = await signIn(l.base, 'alice');
    const { link } = (
      await alice.agent
        .post('/api/v1/devices/import-link')
        .set('X-CSRF-Token', alice.csrf)
        .send({ name: 'tablet' })
        .expect(201)
    ).body as { link: string };
    l.f.clock.now = new Date(l.f.clock.now.getTime() + 11 * 60_000);
    const late = await followImportLink(link);
    assert.equal(late.status, 410);
    assert.match(late.ok ? '' : late.body, /expired/);
    const unknown = await followImportLink(link.replace(/token=.*/, 'token=' + 'A'.repeat(43)));
    assert.equal(unknown.status, 404);
    assert.equal(await certsOf(l.f, 'alice'), 0);
  });

  it('400 naming the field: a taken device name, a bad name', async () => {
    const alice = await signIn(l.base, 'alice');
    await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'laptop' })
      .expect(201);
    const taken = await alice.agent
      .post('/api/v1/devices/import-link')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'laptop' })
      .expect(400);
    assert.equal((taken.body as { error: { field: string } }).error.field, 'name');
    await alice.agent
      .post('/api/v1/devices/import-link')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'Bad.Name' })
      .expect(400);
  });

  it('links are https on web.publicUrl; plain http is refused except on loopback', () => {
    assert.equal(importBase('https://vpn.example.test', 'http://127.0.0.1:1'), 'https://vpn.example.test');
    assert.equal(importBase(undefined, 'http://127.0.0.1:8080'), 'http://127.0.0.1:8080');
    assert.equal(importBase(undefined, 'http://[::1]:8080'), 'http://[::1]:8080');
    assert.throws(() => importBase(undefined, 'http://vpn.example.test'), { field: 'web.publicUrl' });
    assert.throws(() => importBase('http://10.0.0.5:8080', 'http://127.0.0.1:1'), { field: 'web.publicUrl' });
  });
});

describe('OpenVPN Connect: import from URL (/rest/GetUserlogin, /rest/GetAutologin)', function () {
  this.timeout(30_000);
  let l: Live;
  afterEach(async () => l?.close());

  it('a local user with a password gets a profile from both methods', async () => {
    l = await live();
    const a = await restImport(l.base, 'alice', PASSWORD, 'GetUserlogin');
    assert.ok(a.ok, a.ok ? '' : a.body);
    assert.match(a.contentType, /^text\/plain/);
    assert.match(a.profile, /<cert>/);
    const b = await restImport(l.base, 'alice', PASSWORD, 'GetAutologin');
    assert.ok(b.ok, b.ok ? '' : b.body);
    assert.equal(await certsOf(l.f, 'alice'), 2);
    assert.ok((await l.f.ctx.store.listAudit({ action: 'rest-import' })).length === 2);
  });

  it('a user name with one of their API tokens as the password gets a profile', async () => {
    l = await live();
    const tokens = new TokenService({ store: l.f.ctx.store, defaultDays: 30, now: () => new Date() });
    const { secret } = await tokens.create({
      actor: 'bob',
      owner: (await l.f.ctx.store.getUserByName('bob'))!,
      name: 'connect',
    });
    const ok = await restImport(l.base, 'bob', secret);
    assert.ok(ok.ok, ok.ok ? '' : ok.body);
    // someone else's name with bob's token: refused
    const other = await restImport(l.base, 'alice', secret);
    assert.equal(other.status, 401);
    assert.equal(await certsOf(l.f, 'alice'), 0);
  });

  it('401 AUTH_FAILED as the XML Error body for a wrong password, nothing issued', async () => {
    l = await live();
    const r = await restImport(l.base, 'alice', 'wrong password');
    assert.equal(r.ok, false);
    assert.equal(r.status, 401);
    assert.ok(!r.ok && r.error, 'an <Error> body');
    assert.equal(!r.ok && r.error!.type, 'Authorization Required');
    assert.equal(!r.ok && r.error!.synopsis, 'REST method failed');
    assert.match((!r.ok && r.error!.message) || '', /^AUTH_FAILED: /);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic realm="podgate"/);
    const none = await fetch(`${l.base}/rest/GetUserlogin`);
    assert.equal(none.status, 401);
    assert.equal(await certsOf(l.f, 'alice'), 0);
  });

  it('the sign-in throttle applies: past the budget a 429 XML error with Retry-After', async () => {
    l = await live();
    for (let i = 0; i < 3; i++) assert.equal((await restImport(l.base, 'alice', `wrong ${i}`)).status, 401);
    const r = await restImport(l.base, 'alice', PASSWORD);
    assert.equal(r.status, 429);
    assert.equal(!r.ok && r.error!.type, 'Too Many Requests');
    assert.ok(Number(r.headers.get('retry-after')) > 0);
    assert.equal(await certsOf(l.f, 'alice'), 0);
  });

  it('the issue limits apply: devices.maxValidPerUser reached gives an XML error, nothing issued', async () => {
    l = await live({ 'devices.maxValidPerUser': 1 });
    assert.ok((await restImport(l.base, 'alice', PASSWORD)).ok);
    const r = await restImport(l.base, 'alice', PASSWORD);
    assert.equal(r.status, 409);
    assert.match((!r.ok && r.error!.message) || '', /maxValidPerUser/);
    assert.equal(await certsOf(l.f, 'alice'), 1);
  });

  it('a single sign-on user is refused with a message pointing at the one-use link', async () => {
    const secretFile = join(process.cwd(), `.podgate-oidc-secret-${process.pid}`);
    writeFileSync(secretFile, 'test-secret-test-secret\n', { mode: 0o600 });
    try {
      l = await live({
        'auth.oidc': {
          issuer: 'https://id.example.test',
          clientId: 'podgate',
          clientSecretFile: secretFile,
          redirectUrl: 'https://vpn.example.test/auth/oidc/callback',
        },
        'web.publicUrl': 'https://vpn.example.test',
      });
      await l.f.ctx.store.createUser({ name: 'sso-carol', role: 'user', passwordHash: null });
      const r = await restImport(l.base, 'sso-carol', 'anything');
      assert.equal(r.status, 403);
      assert.equal(!r.ok && r.error!.type, 'Access denied');
      assert.match(
        (!r.ok && r.error!.message) || '',
        /single sign-on.*https:\/\/vpn\.example\.test\/devices.*Add to OpenVPN Connect/,
      );
      assert.equal(await certsOf(l.f, 'sso-carol'), 0);
    } finally {
      (await import('node:fs')).rmSync(secretFile, { force: true });
    }
  });
});
