import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../../src/lib/exec.js';
import { startTestProvider } from '../../helpers/oidc-provider.js';
import { reservePort } from '../../helpers/oidc-setup.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

interface Served {
  child: ChildProcess;
  url: string;
  stdout: string;
}

/** Starts `podgate serve` on a free port and waits for the "listening" line. */
function serve(dataDir: string, env: NodeJS.ProcessEnv = {}, port = '0'): Promise<Served> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', port],
      {
        env: {
          ...process.env,
          // No cluster here, whatever the machine's environment says.
          KUBECONFIG: '',
          KUBERNETES_SERVICE_HOST: '',
          PODGATE_VPN_ENDPOINTS: 'vpn.example.test',
          PODGATE_CA_KEY_TYPE: 'ec-p384',
          PODGATE_LOG_LEVEL: 'warn',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start: ${stdout} ${stderr}`));
    }, 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
      const m = /podgate web app on (http:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, stdout });
      }
    });
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${code}: ${stderr}`));
    });
  });
}

function stop(s: Served | undefined): Promise<number | null> {
  if (!s || s.child.exitCode !== null) return Promise.resolve(s?.child.exitCode ?? null);
  return new Promise((resolve) => {
    s.child.removeAllListeners('exit');
    s.child.once('exit', (code) => resolve(code));
    s.child.kill('SIGTERM');
  });
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
  let running: Served | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-serve-'));
  });
  afterEach(async () => {
    await stop(running);
    running = undefined;
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('first start on an empty data dir creates admin with a password printed once', async () => {
    const data = join(dir, 'generated');
    running = await serve(data);
    const m = /password \(shown once, store it now\): (\S+)/.exec(running.stdout);
    assert.ok(m, running.stdout);
    assert.match(running.stdout, /first admin: admin/);
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
    assert.equal(await stop(running), 0, 'SIGTERM ends serve cleanly');
    running = await serve(data);
    assert.doesNotMatch(running.stdout, /password/, 'the password is never printed again');
  });

  it('takes the first admin password from PODGATE_ADMIN_PASSWORD_FILE', async () => {
    const file = join(dir, 'admin-password');
    writeFileSync(file, 'from the file 12345\n', { mode: 0o600 });
    running = await serve(join(dir, 'from-file'), { PODGATE_ADMIN_PASSWORD_FILE: file });
    assert.doesNotMatch(running.stdout, /shown once/);
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
        port,
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
