import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { runCli, tempDir } from '../../helpers/cli.js';
import { serveOnce } from '../../helpers/serve.js';
import { PASSWORD, signIn, webFixture, type WebFixture } from '../web/helpers.js';

/**
 * Issue 11, CLI side: the CLI works on the same data dir as a running web app (a real SQLite file,
 * the real CLI in a child process), and what it changes takes effect in the web app at once.
 */
describe('CLI security (issue 11)', function () {
  this.timeout(120_000);
  let f: WebFixture;
  let env: NodeJS.ProcessEnv;
  let files: ReturnType<typeof tempDir>;
  beforeEach(async () => {
    f = await webFixture();
    files = tempDir('podgate-sec-cli-');
    env = {
      PODGATE_DATA_DIR: f.dir,
      PODGATE_VPN_ENDPOINTS: 'vpn.example.test',
    };
  });
  afterEach(async () => {
    await f?.close();
    files?.cleanup();
  });

  function passwordFile(password: string): string {
    const file = join(files.dir, `pw-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, `${password}\n`, { mode: 0o600 });
    return file;
  }

  it('item 3: `user passwd` ends every web session of that user', async () => {
    const alice = await signIn(f.app, 'alice');
    const bob = await signIn(f.app, 'bob');
    const r = await runCli(
      ['user', 'passwd', 'alice', '--password-file', passwordFile('a fresh secret 2026')],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    await alice.agent.get('/api/v1/me').expect(401);
    await bob.agent.get('/api/v1/me').expect(200);
    await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: 'a fresh secret 2026' })
      .expect(200);
  });

  it('item 3: `user disable` then `user enable` leaves no session alive', async () => {
    const alice = await signIn(f.app, 'alice');
    assert.equal((await runCli(['user', 'disable', 'alice'], env)).code, 0);
    assert.equal((await runCli(['user', 'enable', 'alice'], env)).code, 0);
    await alice.agent.get('/api/v1/me').expect(401);
  });

  it('item 5: `token create --days` sets the expiry; a disable deletes the token for good', async () => {
    const r = await runCli(['token', 'create', 'alice', '--name', 'ci', '--days', '7', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { token: string; expiresAt: string };
    const days = (new Date(out.expiresAt).getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 6.9 && days <= 7, `expires in ${days} days`);
    await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${out.token}`).expect(200);
    const bad = await runCli(['token', 'create', 'alice', '--days', '0'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /days/);
    assert.equal((await runCli(['user', 'disable', 'alice'], env)).code, 0);
    assert.equal((await runCli(['user', 'enable', 'alice'], env)).code, 0);
    await request(f.app).get('/api/v1/me').set('Authorization', `Bearer ${out.token}`).expect(401);
    const list = await runCli(['token', 'list', 'alice', '--json'], env);
    assert.deepEqual(JSON.parse(list.stdout), []);
  });

  it('item 10: `user add` and `user passwd` refuse a short or well-known password (exit 2, nothing changed)', async () => {
    for (const pw of ['aaaaaaaaaa', 'password1234']) {
      const add = await runCli(['user', 'add', 'erin', '--password-file', passwordFile(pw)], env);
      assert.equal(add.code, 2, add.stderr);
      assert.match(add.stderr, /password/);
      const passwd = await runCli(['user', 'passwd', 'alice', '--password-file', passwordFile(pw)], env);
      assert.equal(passwd.code, 2, passwd.stderr);
    }
    assert.equal(await f.ctx.store.getUserByName('erin'), undefined);
    await request(f.app).post('/api/v1/login').send({ name: 'alice', password: PASSWORD }).expect(200);
  });
});

describe('serve in a pod (issue 11, item 13)', function () {
  this.timeout(60_000);

  it('refuses to create the first admin with a generated password (exit 2, nothing printed, no user)', async () => {
    const t = tempDir('podgate-pod-');
    try {
      const r = await serveOnce({
        env: {
          PODGATE_DATA_DIR: t.dir,
          KUBERNETES_SERVICE_HOST: '10.96.0.1',
          KUBERNETES_SERVICE_PORT: '443',
          PODGATE_ADMIN_PASSWORD_FILE: '',
        },
      });
      assert.equal(r.started, false, r.out);
      assert.equal(r.code, 2, r.out);
      assert.match(r.out, /PODGATE_ADMIN_PASSWORD_FILE is required/);
      assert.doesNotMatch(r.out, /shown once/);
      const users = await runCli(['user', 'list', '--json'], {
        PODGATE_DATA_DIR: t.dir,
      });
      assert.deepEqual(JSON.parse(users.stdout), []);
    } finally {
      t.cleanup();
    }
  });
});
