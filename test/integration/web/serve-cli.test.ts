import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../../src/lib/exec.js';
import { startTestProvider } from '../../helpers/oidc-provider.js';
import { reservePort } from '../../helpers/oidc-setup.js';
import { CLI } from '../../helpers/cli.js';
import { startServe, type Serving } from '../../helpers/serve.js';

/** `serve` with warnings shown (they help when a start fails), on `dataDir`. */
function serve(dataDir: string, env: NodeJS.ProcessEnv = {}, port = 0): Promise<Serving> {
  return startServe({ dataDir, env: { PODGATE_LOG_LEVEL: 'warn', ...env }, port });
}

async function login(url: string, name: string, password: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });
  return res.status;
}

describe('podgate serve and podgate token create (CLI, real process)', function () {
  this.timeout(90_000);
  let dir: string;
  let running: Serving | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-serve-'));
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('first start on an empty data dir creates admin with a password printed once', async () => {
    const data = join(dir, 'generated');
    running = await serve(data);
    const m = /password \(shown once, store it now\): (\S+)/.exec(running.stdout());
    assert.ok(m, running.stdout());
    assert.match(running.stdout(), /first admin: admin/);
    assert.equal(await login(running.url, 'admin', m[1]!), 200);
    assert.equal((await fetch(`${running.url}/healthz`)).status, 200);
    // No `server run` beside it: the sessions page says so instead of failing.
    const signin = await fetch(`${running.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'admin', password: m[1]! }),
    });
    const cookie = /podgate_sid=[^;]+/.exec(signin.headers.get('set-cookie') ?? '')![0];
    const page = await fetch(`${running.url}/admin/sessions`, { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Server not connected/);
    assert.match(
      await (await fetch(`${running.url}/admin/cluster`, { headers: { cookie } })).text(),
      /Cluster not connected/,
    );
    assert.equal(await running.stop(), 0, 'SIGTERM ends serve cleanly');
    running = await serve(data);
    assert.doesNotMatch(running.stdout(), /password/, 'the password is never printed again');
  });

  it('takes the first admin password from PODGATE_ADMIN_PASSWORD_FILE', async () => {
    const file = join(dir, 'admin-password');
    writeFileSync(file, 'from the file 12345\n', { mode: 0o600 });
    running = await serve(join(dir, 'from-file'), { PODGATE_ADMIN_PASSWORD_FILE: file });
    assert.doesNotMatch(running.stdout(), /shown once/);
    assert.equal(await login(running.url, 'admin', 'from the file 12345'), 200);
  });

  it('with auth.oidc set (environment only) the sign-in page offers single sign-on and starts it', async () => {
    const reserved = await reservePort();
    const port = new URL(reserved.url).port;
    await reserved.close();
    const provider = await startTestProvider({ redirectUris: [`${reserved.url}/auth/oidc/callback`] });
    try {
      running = await serve(
        join(dir, 'sso'),
        {
          PODGATE_AUTH_LOCAL: 'admins-only',
          PODGATE_AUTH_OIDC_ISSUER: provider.issuer,
          PODGATE_AUTH_OIDC_CLIENT_ID: 'podgate',
          PODGATE_AUTH_OIDC_DISPLAY_NAME: 'Acme ID',
          PODGATE_AUTH_OIDC_REDIRECT_URL: `${reserved.url}/auth/oidc/callback`,
        },
        Number(port),
      );
      const page = await (await fetch(`${running.url}/login`)).text();
      assert.match(page, /Sign in with Acme ID/);
      const start = await fetch(`${running.url}/auth/oidc/start`, { redirect: 'manual' });
      assert.equal(start.status, 303);
      const to = new URL(start.headers.get('location')!);
      assert.equal(to.origin + to.pathname, `${provider.issuer}/auth`);
      assert.equal(to.searchParams.get('redirect_uri'), `${reserved.url}/auth/oidc/callback`);
    } finally {
      await provider.close();
    }
  });

  it('token create prints a token once that works as a Bearer token; only its hash is stored', async () => {
    const data = join(dir, 'generated');
    const out = await exec([process.execPath, CLI, 'token', 'create', 'admin', '--data-dir', data], {
      env: { ...process.env, PODGATE_LOG_LEVEL: 'warn' },
    });
    const token = /^(pgt_[A-Za-z0-9_-]{43})$/m.exec(out.stdout)?.[1];
    assert.ok(token, out.stdout);
    // The secret appears nowhere in the database files (only its sha256 is stored).
    for (const file of ['podgate.db', 'podgate.db-wal']) {
      if (existsSync(join(data, file)))
        assert.ok(!readFileSync(join(data, file)).includes(Buffer.from(token)), file);
    }
    running = await serve(data);
    const me = await fetch(`${running.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { user: { name: string } }).user.name, 'admin');
    const bad = await exec([process.execPath, CLI, 'token', 'create', 'nobody', '--data-dir', data], {
      check: false,
    });
    assert.equal(bad.code, 2);
  });
});
