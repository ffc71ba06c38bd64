import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CustomFetch } from 'openid-client';
import { openOidc } from '../../../src/services/oidc.js';
import { createApp } from '../../../src/web/app.js';
import request from 'supertest';
import { Jar, request as step, throughProvider } from '../../helpers/oidc-driver.js';
import { startTestProvider, type ProviderOptions, type TestProvider } from '../../helpers/oidc-provider.js';
import { realIdToken, reservePort, swappingFetch } from '../../helpers/oidc-setup.js';
import { PASSWORD, webFixture, type WebFixture } from './helpers.js';
import { runCli } from '../../helpers/cli.js';
import { exec } from '../../../src/lib/exec.js';
import { TokenCipher } from '../../../src/services/oidc-token-cipher.js';
import { request as httpRequest } from 'node:http';

/** A request with headers fetch() will not send (Host), as a reverse proxy would send them. */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string>,
  o: { method?: string; body?: string } = {},
): Promise<{ status: number; location?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      new URL(path, base),
      { method: o.method ?? 'GET', headers: { accept: 'text/html', ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const SECRET = 'podgate-test-client-secret';
const SECRET_FILE = join(tmpdir(), `podgate-oidc-secret-${process.pid}`);

interface Rig {
  f: WebFixture;
  url: string;
  callback: string;
  close(): Promise<void>;
}

interface Reserved {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/**
 * podgate on a reserved real port (the provider sends browsers back to it) with `auth.oidc` pointing at
 * `issuer`. Users admin, alice and bob exist with local passwords.
 */
async function rig(
  port: Reserved,
  issuer: string,
  extra: Record<string, unknown> = {},
  fetchImpl?: CustomFetch,
  top: Record<string, unknown> = {},
): Promise<Rig> {
  const callback = `${port.url}/auth/oidc/callback`;
  const f = await webFixture(
    {},
    {
      'auth.oidc': {
        issuer,
        clientId: 'podgate',
        clientSecretFile: SECRET_FILE,
        displayName: 'Acme ID',
        scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
        allowedGroups: ['vpn-users'],
        adminGroups: ['vpn-admins'],
        redirectUrl: callback,
        ...extra,
      },
      ...top,
    },
  );
  const oidc = openOidc(f.ctx, { fetch: fetchImpl });
  const app = createApp({ ctx: f.ctx, now: () => f.clock.now, oidc });
  port.server.on('request', app);
  return {
    f: { ...f, app },
    url: port.url,
    callback,
    async close() {
      await port.close();
      await f.close();
    },
  };
}

/** A podgate.yaml for the CLI with the rig's data dir and single sign-on settings. */
function configFile(r: Rig): string {
  const file = join(r.f.dir, 'podgate.yaml');
  const c = r.f.ctx.config;
  writeFileSync(
    file,
    JSON.stringify({ dataDir: r.f.dir, ca: { keyType: c.ca.keyType }, auth: { oidc: c.auth.oidc } }),
  );
  return file;
}

/** Starts at podgate, signs in at the provider, and returns the callback URL the browser would open. */
async function toCallback(r: Rig, jar: Jar, login: string, next = '/devices'): Promise<string> {
  const start = await step(jar, `${r.url}/auth/oidc/start?next=${encodeURIComponent(next)}`);
  assert.equal(start.status, 303, start.body.slice(0, 300));
  return throughProvider(jar, start.location!, login, r.callback);
}

/** The whole round trip; returns podgate's answer to the callback. */
async function signInVia(
  r: Rig,
  login: string,
  next?: string,
): Promise<{ jar: Jar; res: Awaited<ReturnType<typeof step>> }> {
  const jar = new Jar();
  const back = await toCallback(r, jar, login, next);
  return { jar, res: await step(jar, back) };
}

function sessionOf(jar: Jar, r: Rig): string | undefined {
  return jar.get(r.url, 'podgate_sid');
}

describe('web: OpenID Connect sign-in against a real provider (oidc-provider)', function () {
  this.timeout(60_000);
  let p: TestProvider;
  let r: Rig;

  before(() => writeFileSync(SECRET_FILE, SECRET + '\n', { mode: 0o600 }));
  after(() => rmSync(SECRET_FILE, { force: true }));

  /** A provider with three people and podgate in front of it. */
  async function setup(
    extra: Record<string, unknown> = {},
    fetchImpl?: CustomFetch,
    provider: Omit<ProviderOptions, 'redirectUris'> = {},
    top: Record<string, unknown> = {},
  ): Promise<Reserved> {
    const port = await reservePort();
    p = await startTestProvider({ redirectUris: [`${port.url}/auth/oidc/callback`], ...provider });
    p.accounts.set('u-dev', {
      preferred_username: 'Dev.Eloper',
      email: 'dev@example.test',
      groups: ['vpn-users'],
    });
    p.accounts.set('u-boss', { preferred_username: 'boss', groups: ['vpn-users', 'vpn-admins'] });
    p.accounts.set('u-alice', { preferred_username: 'alice', groups: ['vpn-users'] });
    r = await rig(port, p.issuer, extra, fetchImpl, top);
    return port;
  }

  afterEach(async () => {
    await r?.close();
    await p?.close();
    await other?.close();
    other = undefined;
  });
  let other: TestProvider | undefined;

  it('first sign-in creates a valid, unique user linked by subject; the next one (renamed) finds it', async () => {
    await setup();
    const { jar, res } = await signInVia(r, 'u-dev');
    assert.equal(res.status, 200, res.body.slice(0, 500));
    assert.match(res.body, /http-equiv="refresh" content="0;url=\/devices"/);
    assert.ok(sessionOf(jar, r), 'a session cookie was set');
    const user = await r.f.ctx.store.getUserByName('dev.eloper');
    assert.ok(user, 'user named from preferred_username, made valid');
    assert.equal(user.role, 'user');
    assert.equal(user.passwordHash, null, 'no password for a single sign-on user');
    const me = await step(jar, `${r.url}/devices`);
    assert.equal(me.status, 200);
    assert.match(me.body, /My devices/);
    // renamed at the provider: still the same podgate user
    p.accounts.set('u-dev', { preferred_username: 'renamed', groups: ['vpn-users'] });
    const again = await signInVia(r, 'u-dev');
    assert.equal(again.res.status, 200);
    assert.equal(await r.f.ctx.store.getUserByName('renamed'), undefined);
    assert.equal((await r.f.ctx.users.list()).filter((u) => u.name.startsWith('dev')).length, 1);
    const audit = (await r.f.ctx.store.listAudit({ limit: 50 })).map((a) => a.action);
    assert.ok(audit.includes('oidc.link') && audit.includes('user.create'), audit.join(','));
  });

  it('a user-name claim equal to a local user makes a new user with a suffix: no takeover', async () => {
    await setup();
    const alice = (await r.f.ctx.store.getUserByName('alice'))!;
    const { jar, res } = await signInVia(r, 'u-alice');
    assert.equal(res.status, 200, res.body.slice(0, 300));
    const me = await step(jar, `${r.url}/devices`);
    assert.match(me.body, /alice-2/);
    assert.deepEqual(await r.f.ctx.store.getUserByName('alice'), alice, 'the local alice is untouched');
    assert.equal(await r.f.ctx.store.getOidcIdentityOfUser(alice!.id), undefined);
    // and alice's password still signs in the local account
    await request(r.f.app).post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(200);
  });

  it('admin-group members are admins; losing the group demotes, losing the allowed group disables and revokes', async () => {
    await setup();
    const first = await signInVia(r, 'u-boss');
    assert.equal(first.res.status, 200);
    assert.equal((await r.f.ctx.store.getUserByName('boss'))!.role, 'admin');
    assert.equal((await step(first.jar, `${r.url}/admin/users`)).status, 200);
    p.accounts.set('u-boss', { preferred_username: 'boss', groups: ['vpn-users'] });
    const second = await signInVia(r, 'u-boss');
    assert.equal(second.res.status, 200);
    assert.equal((await r.f.ctx.store.getUserByName('boss'))!.role, 'user');
    await r.f.ctx.devices.issue({
      actor: 'test',
      owner: 'boss',
      commonName: 'boss.laptop',
      deviceName: 'laptop',
    });
    p.accounts.set('u-boss', { preferred_username: 'boss', groups: ['marketing'] });
    const third = await signInVia(r, 'u-boss');
    assert.equal(third.res.status, 403);
    assert.match(third.res.body, /ask your admin to add you to &quot;vpn-users&quot;/);
    assert.equal(sessionOf(third.jar, r), undefined);
    const boss = (await r.f.ctx.store.getUserByName('boss'))!;
    assert.equal(boss!.disabled, true);
    const cert = (await r.f.ctx.store.listCerts({ ownerId: boss!.id, limit: 10 })).items[0]!;
    assert.equal(cert.status, 'revoked');
    const actions = (await r.f.ctx.store.listAudit({ limit: 100 })).map((a) => a.action);
    for (const a of ['oidc.demote', 'oidc.disable', 'user.disable']) assert.ok(actions.includes(a), a);
    // access rules match these groups: each change the sign-in saw is audited
    const groupRows = (await r.f.ctx.store.listAudit({ limit: 10, action: 'oidc.groups' })).map(
      (a) => a.details.to,
    );
    assert.deepEqual(groupRows, [['marketing'], ['vpn-users']]);
  });

  it('someone outside the allowed groups is refused at first sign-in and no user is made', async () => {
    await setup();
    p.accounts.set('u-out', { preferred_username: 'outsider', groups: ['sales'] });
    const before = (await r.f.ctx.users.list()).length;
    const { res } = await signInVia(r, 'u-out');
    assert.equal(res.status, 403);
    assert.match(
      res.body,
      /not in a group allowed to use podgate: ask your admin to add you to &quot;vpn-users&quot;/,
    );
    assert.equal((await r.f.ctx.users.list()).length, before);
  });

  it('403 when the groups claim is absent, and when it is not a list; nothing is created', async () => {
    await setup();
    p.accounts.set('u-nog', { preferred_username: 'nogroups' });
    p.accounts.set('u-str', { preferred_username: 'stringgroups', groups: 'vpn-users' });
    const before = (await r.f.ctx.users.list()).length;
    const a = await signInVia(r, 'u-nog');
    assert.equal(a.res.status, 403);
    assert.match(a.res.body, /sent no &quot;groups&quot; claim/);
    const b = await signInVia(r, 'u-str');
    assert.equal(b.res.status, 403);
    assert.match(b.res.body, /claim is not a list of group names \(got string\)/);
    assert.equal((await r.f.ctx.users.list()).length, before);
  });

  it('400 on a state mismatch and on a nonce mismatch; no session either way', async () => {
    await setup();
    const jar = new Jar();
    const back = new URL(await toCallback(r, jar, 'u-dev'));
    back.searchParams.set('state', 'forged-state');
    const res = await step(jar, back.href);
    assert.equal(res.status, 400);
    assert.match(res.body, /state mismatch/);
    assert.equal(sessionOf(jar, r), undefined);

    const jar2 = new Jar();
    const back2 = await toCallback(r, jar2, 'u-dev');
    // the pending sign-in kept server-side gets another nonce than the one the provider put in the token
    const key = 'oidc-pending:' + createHash('sha256').update(jar2.get(r.url, 'podgate_oidc')!).digest('hex');
    const rec = (await r.f.ctx.store.getSession(key, new Date()))!;
    const data = JSON.parse(rec!.data) as Record<string, string>;
    await r.f.ctx.store.setSession(
      key,
      JSON.stringify({ ...data, nonce: 'another-nonce' }),
      rec!.expiresAt,
      null,
    );
    const res2 = await step(jar2, back2);
    assert.equal(res2.status, 400);
    assert.match(res2.body, /nonce mismatch/);
    assert.equal(sessionOf(jar2, r), undefined);
    assert.equal(
      await r.f.ctx.store.getUserByName('dev.eloper'),
      undefined,
      'no user made by a refused sign-in',
    );
  });

  it('a callback without the browser cookie (or used twice) is refused', async () => {
    await setup();
    const jar = new Jar();
    const back = await toCallback(r, jar, 'u-dev');
    const stranger = await step(new Jar(), back);
    assert.equal(stranger.status, 400);
    assert.match(stranger.body, /not started in this browser/);
    // the right browser succeeds once; the same answer replayed with the same cookie is refused
    const cookie = jar.get(r.url, 'podgate_oidc')!;
    assert.equal((await step(jar, back)).status, 200);
    const res = await fetch(back, { headers: { cookie: `podgate_oidc=${cookie}` }, redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /already used/);
    assert.equal(res.headers.getSetCookie().filter((c) => c.startsWith('podgate_sid=')).length, 0);
  });

  it('PKCE: podgate always sends an S256 challenge; a code from a request without one is refused', async () => {
    await setup();
    const jar = new Jar();
    const start = await step(jar, `${r.url}/auth/oidc/start`);
    const auth = new URL(start.location!);
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    assert.match(auth.searchParams.get('code_challenge') ?? '', /^[\w-]{43}$/);
    auth.searchParams.delete('code_challenge');
    auth.searchParams.delete('code_challenge_method');
    const back = await throughProvider(jar, auth.href, 'u-dev', r.callback);
    const res = await step(jar, back);
    assert.ok(res.status >= 400, `refused (${res.status})`);
    assert.match(res.body, /PKCE|code_challenge/i);
    assert.equal(sessionOf(jar, r), undefined);
  });

  it('an ID token from another issuer is refused (a real token of a second provider swapped in)', async () => {
    const swap: { token?: string } = {};
    await setup({}, swappingFetch(() => swap.token) as unknown as CustomFetch);
    other = await startTestProvider({ redirectUris: [r.callback] });
    other.accounts.set('u-dev', { preferred_username: 'dev', groups: ['vpn-users'] });
    swap.token = await realIdToken(other.issuer, 'podgate', r.callback, 'u-dev');
    const { jar, res } = await signInVia(r, 'u-dev');
    assert.equal(res.status, 400, res.body.slice(0, 300));
    assert.match(res.body, /issued by another provider than/);
    assert.equal(sessionOf(jar, r), undefined);
  });

  it('an ID token issued to another application is refused (a real token of client other-app swapped in)', async () => {
    const swap: { token?: string } = {};
    await setup({}, swappingFetch(() => swap.token) as unknown as CustomFetch);
    swap.token = await realIdToken(p.issuer, 'other-app', r.callback, 'u-dev');
    const { jar, res } = await signInVia(r, 'u-dev');
    assert.equal(res.status, 400, res.body.slice(0, 300));
    assert.match(res.body, /issued to another application/);
    assert.equal(sessionOf(jar, r), undefined);
  });

  it("an expired ID token is refused with the clock explained (podgate's clock two hours ahead)", async () => {
    await setup();
    r.f.clock.now = new Date(Date.now() + 2 * 3_600_000);
    const { jar, res } = await signInVia(r, 'u-dev');
    assert.equal(res.status, 400, res.body.slice(0, 300));
    assert.match(res.body, /expired or not yet valid: podgate&#x27;s clock and the provider&#x27;s differ/);
    assert.match(res.body, /check NTP/);
    assert.equal(sessionOf(jar, r), undefined);
  });

  it('open redirect: next pointing off-site becomes /devices', async () => {
    await setup();
    for (const next of [
      '//evil.example/x',
      'https://evil.example/',
      '/\\evil.example',
      '/login?next=//evil',
    ]) {
      const { res } = await signInVia(r, 'u-dev', next);
      assert.equal(res.status, 200);
      assert.match(res.body, /content="0;url=\/devices"/, next);
      assert.doesNotMatch(res.body, /evil/);
    }
    const ok = await signInVia(r, 'u-dev', '/setup');
    assert.match(ok.res.body, /content="0;url=\/setup"/);
  });

  it('502 naming the provider when it is down; 500 naming the fix when opened at another address', async () => {
    await setup();
    await p.close();
    const down = await step(new Jar(), `${r.url}/auth/oidc/start`);
    assert.equal(down.status, 502);
    assert.match(down.body, /sign-in provider at http:\/\/127\.0\.0\.1:\d+ is not reachable/);
    const other = await fetch(`${r.url.replace('127.0.0.1', 'localhost')}/auth/oidc/start`, {
      redirect: 'manual',
    });
    const body = await other.text();
    assert.equal(other.status, 500);
    assert.match(
      body,
      /open podgate at http:\/\/127\.0\.0\.1:\d+, or ask your admin to fix auth\.oidc\.redirectUrl/,
    );
  });

  it('429 after 30 sign-ins started from one address in a minute (each keeps a row for ten minutes)', async () => {
    await setup();
    const jar = new Jar();
    for (let i = 0; i < 30; i++) assert.equal((await step(jar, `${r.url}/auth/oidc/start`)).status, 303);
    const res = await step(jar, `${r.url}/auth/oidc/start`);
    assert.equal(res.status, 429);
    assert.match(res.body, /too many sign-ins started from this address/);
    // express-rate-limit says when the minute's window ends.
    const again = await fetch(`${r.url}/auth/oidc/start`, { redirect: 'manual' });
    assert.equal(again.status, 429);
    const retryAfter = Number(again.headers.get('retry-after'));
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
      `Retry-After ${retryAfter}`,
    );
  });

  it('API tokens keep working for a single sign-on user (token from `podgate token create`)', async () => {
    await setup();
    await signInVia(r, 'u-dev');
    const cli = await runCli(['--config', configFile(r), 'token', 'create', 'dev.eloper']);
    assert.equal(cli.code, 0, cli.stderr);
    const token = /(pgt_[\w-]+)/.exec(cli.stdout)![1]!;
    const viaToken = await fetch(`${r.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(viaToken.status, 200);
    assert.equal(((await viaToken.json()) as { user: { name: string } }).user.name, 'dev.eloper');
  });

  it('leaver check: a deleted account (invalid_grant) is disabled and its certificates revoked', async () => {
    await setup();
    await signInVia(r, 'u-dev');
    await signInVia(r, 'u-boss');
    const identity = (await r.f.ctx.store.getOidcIdentityOfUser(
      (await r.f.ctx.store.getUserByName('dev.eloper'))!.id,
    ))!;
    assert.ok(identity.refreshToken, 'a refresh token is stored');
    assert.doesNotMatch(identity.refreshToken!, /^[\w-]{20,}$/, 'only as an encrypted envelope');
    await r.f.ctx.devices.issue({
      actor: 'test',
      owner: 'dev.eloper',
      commonName: 'dev.laptop',
      deviceName: 'laptop',
    });
    p.accounts.delete('u-dev');
    p.accounts.set('u-boss', { preferred_username: 'boss', groups: ['vpn-users'] });
    const run = await runCli(['--config', configFile(r), '--json', 'user', 'sync']);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { user: string; outcome: string }[];
    assert.deepEqual(
      result.map((e) => [e.user, e.outcome]),
      [
        ['dev.eloper', 'disabled'],
        ['boss', 'demoted'],
      ],
    );
    assert.equal((await r.f.ctx.store.getUserByName('dev.eloper'))!.disabled, true);
    const groupChange = (await r.f.ctx.store.listAudit({ limit: 5, action: 'oidc.groups' }))[0]!;
    assert.deepEqual(
      [groupChange.actor, groupChange.target, groupChange.details.to],
      ['cli', 'boss', ['vpn-users']],
    );
    const cert = (await r.f.ctx.store.getCert(
      (await r.f.ctx.store.listCerts({ search: 'dev.laptop', limit: 1 })).items[0]!.serial,
    ))!;
    assert.equal(cert!.status, 'revoked');
    const crl = (await r.f.ctx.store.getCrl())!.pem;
    const crlText = await exec(['openssl', 'crl', '-noout', '-text'], { input: crl });
    assert.match(crlText.stdout, new RegExp(`Serial Number: ${cert!.serial}`));
    // a second run (in-process this time) leaves them alone
    const again = await openOidc(r.f.ctx)!.sync('test');
    assert.deepEqual(
      again.map((e) => e.outcome),
      ['already-disabled', 'ok'],
    );
    // the provider down: nothing changes, an error row says so, the next run tries again
    await p.close();
    const down = await openOidc(r.f.ctx)!.sync('test');
    assert.deepEqual(
      down.map((e) => [e.user, e.outcome]),
      [
        ['dev.eloper', 'already-disabled'],
        ['boss', 'error'],
      ],
    );
    assert.match(down[1]!.detail!, /not reachable/);
    assert.equal((await r.f.ctx.store.getUserByName('boss'))!.disabled, false);
    assert.equal((await r.f.ctx.store.listAudit({ limit: 5, action: 'oidc.sync' }))[0]!.result, 'error');
  });

  it('auth.local admins-only: a non-admin password is refused with the way to go, an admin still signs in', async () => {
    const port = await reservePort();
    p = await startTestProvider({ redirectUris: [`${port.url}/auth/oidc/callback`] });
    r = await rig(port, p.issuer, {}, undefined, { 'auth.local': 'admins-only' });
    const bob = await request(r.f.app).post('/api/v1/login').send({ name: 'bob', password: PASSWORD });
    assert.equal(bob.status, 401);
    assert.match(bob.body.error.message, /only administrators sign in with a password here/);
    await request(r.f.app).post('/api/v1/login').send({ name: 'admin', password: PASSWORD }).expect(200);
    const page = await request(r.f.app).get('/login').expect(200);
    assert.match(page.text, /Sign in with Acme ID/);
    assert.match(page.text, /name="password"/);
  });

  it('auth.local off: nobody signs in with a password and the page shows only single sign-on', async () => {
    const port = await reservePort();
    p = await startTestProvider({ redirectUris: [`${port.url}/auth/oidc/callback`] });
    r = await rig(port, p.issuer, {}, undefined, { 'auth.local': 'off' });
    const admin = await request(r.f.app).post('/api/v1/login').send({ name: 'admin', password: PASSWORD });
    assert.equal(admin.status, 401);
    assert.match(admin.body.error.message, /password sign-in is turned off/);
    const page = await request(r.f.app).get('/login').expect(200);
    assert.match(page.text, /Sign in with Acme ID/);
    assert.doesNotMatch(page.text, /name="password"/);
  });

  /** The claims of a JWT's payload (no check: the test only looks at what the provider put in). */
  function payloadOf(jwt: string): Record<string, unknown> {
    return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
  }

  /** The refresh token stored for a user, opened. */
  async function storedRefreshToken(name: string): Promise<string> {
    const identity = (await r.f.ctx.store.getOidcIdentityOfUser(
      (await r.f.ctx.store.getUserByName(name))!.id,
    ))!;
    return TokenCipher.open(r.f.ctx.config, r.f.ctx.dataDir).open(identity.refreshToken!);
  }

  it('a conformant provider (profile, email, groups only at UserInfo): sign-in reads UserInfo and names the user from it', async () => {
    let userInfoReads = 0;
    await setup({}, undefined, { onUserInfo: () => userInfoReads++ });
    // what the provider really puts in podgate's ID token: no name, no groups
    const idToken = payloadOf(await realIdToken(p.issuer, 'podgate', r.callback, 'u-boss'));
    assert.equal(idToken.preferred_username, undefined, JSON.stringify(idToken));
    assert.equal(idToken.groups, undefined, JSON.stringify(idToken));
    userInfoReads = 0;
    const { jar, res } = await signInVia(r, 'u-boss');
    assert.equal(res.status, 200, res.body.slice(0, 500));
    assert.ok(userInfoReads >= 1, 'podgate asked UserInfo');
    const boss = await r.f.ctx.store.getUserByName('boss');
    assert.ok(boss, 'named from the UserInfo preferred_username');
    assert.equal(boss.role, 'admin', 'admin group from UserInfo');
    assert.deepEqual((await r.f.ctx.store.getOidcIdentityOfUser(boss.id))!.groups, [
      'vpn-admins',
      'vpn-users',
    ]);
    assert.equal((await step(jar, `${r.url}/admin/users`)).status, 200);
  });

  it('an ID-token-only provider (no UserInfo endpoint): sign-in and the leaver check work from the ID token', async () => {
    await setup({}, undefined, { claimsIn: 'id-token' });
    const { res } = await signInVia(r, 'u-boss');
    assert.equal(res.status, 200, res.body.slice(0, 500));
    assert.equal((await r.f.ctx.store.getUserByName('boss'))!.role, 'admin');
    p.accounts.set('u-boss', { preferred_username: 'boss', groups: ['vpn-users'] });
    const run = await openOidc(r.f.ctx)!.sync('test');
    assert.deepEqual(
      run.map((e) => [e.user, e.outcome]),
      [['boss', 'demoted']],
    );
  });

  it('UserInfo answering for another subject is refused: no session, no user', async () => {
    const forged = async (url: string, init: RequestInit): Promise<Response> => {
      const res = await fetch(url, init);
      if (new URL(url).pathname !== '/me') return res;
      const json = (await res.json()) as Record<string, unknown>;
      return new Response(JSON.stringify({ ...json, sub: 'u-alice' }), {
        status: res.status,
        headers: { 'content-type': 'application/json' },
      });
    };
    await setup({}, forged as unknown as CustomFetch);
    const before = (await r.f.ctx.users.list()).length;
    const { jar, res } = await signInVia(r, 'u-dev');
    assert.equal(res.status, 400, res.body.slice(0, 500));
    assert.match(res.body, /failed a check|could not be verified/);
    assert.equal(sessionOf(jar, r), undefined);
    assert.equal((await r.f.ctx.users.list()).length, before);
  });

  for (const claimsIn of ['id-token', 'conformant'] as const) {
    it(`leaver check (${claimsIn}): a refresh without the groups claim is "in no group": disabled, certificates revoked`, async () => {
      await setup({}, undefined, { claimsIn });
      assert.equal((await signInVia(r, 'u-dev')).res.status, 200);
      await r.f.ctx.devices.issue({
        actor: 'test',
        owner: 'dev.eloper',
        commonName: 'dev.laptop',
        deviceName: 'laptop',
      });
      // what Okta sends for a leaver: the groups filter matches nothing, so the claim is left out
      p.accounts.set('u-dev', { preferred_username: 'Dev.Eloper', email: 'dev@example.test' });
      const run = await openOidc(r.f.ctx)!.sync('test');
      assert.deepEqual(
        run.map((e) => [e.user, e.outcome]),
        [['dev.eloper', 'disabled']],
        JSON.stringify(run),
      );
      const dev = (await r.f.ctx.store.getUserByName('dev.eloper'))!;
      assert.equal(dev!.disabled, true);
      assert.equal(
        (await r.f.ctx.store.listCerts({ ownerId: dev!.id, limit: 10 })).items[0]!.status,
        'revoked',
      );
      const audit = (await r.f.ctx.store.listAudit({ limit: 20, action: 'oidc.disable' }))[0]!;
      assert.equal(audit.details.reason, 'not in an allowed group');
    });

    it(`leaver check (${claimsIn}) with single-use refresh tokens: a run that fails after the refresh keeps the new token`, async () => {
      await setup({}, undefined, { claimsIn, rotateRefreshTokens: true });
      assert.equal((await signInVia(r, 'u-dev')).res.status, 200);
      const first = await storedRefreshToken('dev.eloper');
      // a broken claim mapping for one run: an error for this user, nothing changed...
      p.accounts.set('u-dev', { preferred_username: 'Dev.Eloper', groups: 'vpn-users' });
      const broken = await openOidc(r.f.ctx)!.sync('test');
      assert.deepEqual(
        broken.map((e) => e.outcome),
        ['error'],
      );
      assert.match(broken[0]!.detail!, /not a list of group names/);
      assert.equal((await r.f.ctx.store.getUserByName('dev.eloper'))!.disabled, false);
      // ...but the provider rotated the token, and podgate kept the new one
      assert.notEqual(await storedRefreshToken('dev.eloper'), first, 'the rotated refresh token was saved');
      p.accounts.set('u-dev', { preferred_username: 'Dev.Eloper', groups: ['vpn-users'] });
      const next = await openOidc(r.f.ctx)!.sync('test');
      assert.deepEqual(
        next.map((e) => [e.outcome, e.detail]),
        [['ok', undefined]],
      );
      assert.equal((await r.f.ctx.store.getUserByName('dev.eloper'))!.disabled, false);
      assert.equal((await openOidc(r.f.ctx)!.sync('test'))[0]!.outcome, 'ok', 'and the run after that');
    });
  }

  it('two leaver checks at once (serve and `podgate user sync`) take turns: a single-use token is never spent twice', async () => {
    // The first refresh is held back until the second run's refresh has been answered (or 1.5 s have
    // passed, when the second run is waiting for the first): without the lock both runs send the same
    // token, and the provider refuses the later one as reused (invalid_grant), which disables the user.
    let tokenCalls = 0;
    let secondAnswered!: () => void;
    const answered = new Promise<void>((resolve) => (secondAnswered = resolve));
    const gate = async (url: string, init: RequestInit): Promise<Response> => {
      if (!new URL(url).pathname.endsWith('/token')) return fetch(url, init);
      const n = ++tokenCalls;
      if (n === 1) {
        await Promise.race([answered, new Promise((resolve) => setTimeout(resolve, 1500))]);
        return fetch(url, init);
      }
      const res = await fetch(url, init);
      await res.clone().text();
      if (n === 2) secondAnswered();
      return res;
    };
    await setup({}, undefined, { rotateRefreshTokens: true });
    assert.equal((await signInVia(r, 'u-dev')).res.status, 200);
    const serve = openOidc(r.f.ctx, { fetch: gate as unknown as CustomFetch })!;
    const cli = openOidc(r.f.ctx, { fetch: gate as unknown as CustomFetch })!;
    const [a, b] = await Promise.all([serve.sync('oidc-sync'), cli.sync('cli')]);
    assert.deepEqual(
      [...a, ...b].map((e) => [e.user, e.outcome]),
      [
        ['dev.eloper', 'ok'],
        ['dev.eloper', 'ok'],
      ],
      JSON.stringify([a, b]),
    );
    assert.equal((await r.f.ctx.store.getUserByName('dev.eloper'))!.disabled, false);
    assert.equal(tokenCalls, 2);
  });

  it('behind a trusted proxy that rewrites Host, sign-in starts from X-Forwarded-Host', async () => {
    await setup({}, undefined, {}, { 'web.trustProxy': true, 'web.trustedProxies': ['127.0.0.1'] });
    const publicHost = new URL(r.url).host;
    // nginx's default: Host is the upstream's name, the browser's host comes in X-Forwarded-Host
    const proxied = await rawGet(r.url, '/auth/oidc/start', {
      host: 'podgate-upstream:8080',
      'x-forwarded-host': publicHost,
      'x-forwarded-proto': 'http',
    });
    assert.equal(proxied.status, 303, proxied.body.slice(0, 300));
    assert.match(proxied.location ?? '', new RegExp(`^${p.issuer}/auth\\?`));
    // password sign-in through the same proxy: the browser's Origin is the forwarded host
    const login = await rawGet(
      r.url,
      '/api/v1/login',
      {
        host: 'podgate-upstream:8080',
        'x-forwarded-host': publicHost,
        'x-forwarded-proto': 'http',
        origin: `http://${publicHost}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      { method: 'POST', body: JSON.stringify({ name: 'admin', password: PASSWORD }) },
    );
    assert.equal(login.status, 200, login.body.slice(0, 300));
    // the same request without the forwarded host names the mismatch
    const direct = await rawGet(r.url, '/auth/oidc/start', { host: 'podgate-upstream:8080' });
    assert.equal(direct.status, 500);
    assert.match(direct.body, /was opened as http:\/\/podgate-upstream:8080/);
  });

  it('X-Forwarded-Host from an address that is not a trusted proxy is ignored', async () => {
    await setup({}, undefined, {}, { 'web.trustProxy': true, 'web.trustedProxies': ['10.9.9.9'] });
    const res = await rawGet(r.url, '/auth/oidc/start', {
      host: 'podgate-upstream:8080',
      'x-forwarded-host': new URL(r.url).host,
    });
    assert.equal(res.status, 500);
    assert.match(res.body, /was opened as http:\/\/podgate-upstream:8080/);
  });
});
