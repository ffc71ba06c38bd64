/**
 * Admin backup download from the web app (page form and JSON API) on a real data dir: the file
 * decrypts with the chosen passphrase and holds the database and CA files; every download is audited;
 * non-admins get 403, short or mismatched passphrases a 400 with the field named, and nothing is sent.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { decodeBackup } from '../../../src/services/backup-format.js';
import { csrfFromHtml, signIn, webFixture, type WebFixture, PASSWORD } from './helpers.js';

const PASS = 'a passphrase for the web';

/** supertest: collect a binary body as a Buffer. */
function binary(res: request.Response, cb: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
}

describe('web: admin backup download', function () {
  this.timeout(60_000);
  let f: WebFixture;
  before(async () => {
    f = await webFixture();
    await f.ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: 'alice-laptop' });
  });
  after(() => f.close());

  it('POST /api/v1/backup: an admin gets a backup that decrypts, no-store, audited', async () => {
    const admin = await signIn(f.app, 'admin');
    const res = await admin.agent
      .post('/api/v1/backup')
      .set('X-CSRF-Token', admin.csrf)
      .send({ passphrase: PASS })
      .buffer(true)
      .parse(binary)
      .expect(200);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.match(
      String(res.headers['content-disposition']),
      /^attachment; filename="podgate-\d{8}T\d{6}Z\.pgbackup"$/,
    );
    const body = res.body as Buffer;
    const decoded = decodeBackup(body, PASS);
    assert.deepEqual(decoded.entries.map((e) => e.path).sort(), [
      'ca-key.kek',
      'ca.crt',
      'ca.key.enc',
      'podgate.db',
    ]);
    assert.equal(decoded.info.certificates, 2, 'alice-laptop and the server certificate');
    const audit = await f.ctx.store.listAudit({ action: 'backup.download' });
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.actor, 'admin');
    assert.equal(audit[0]!.details.sha256, res.headers['x-backup-sha256']);
  });

  it('403 for a non-admin, 401 without a session, 403 without the CSRF token', async () => {
    const alice = await signIn(f.app, 'alice');
    await alice.agent
      .post('/api/v1/backup')
      .set('X-CSRF-Token', alice.csrf)
      .send({ passphrase: PASS })
      .expect(403);
    await request(f.app).post('/api/v1/backup').send({ passphrase: PASS }).expect(401);
    const admin = await signIn(f.app, 'admin');
    await admin.agent.post('/api/v1/backup').send({ passphrase: PASS }).expect(403);
    assert.equal(
      (await f.ctx.store.listAudit({ action: 'backup.download' })).length,
      1,
      'no more downloads audited',
    );
  });

  it('400 naming the field: short passphrase, missing passphrase', async () => {
    const admin = await signIn(f.app, 'admin');
    const short = await admin.agent
      .post('/api/v1/backup')
      .set('X-CSRF-Token', admin.csrf)
      .send({ passphrase: 'short' })
      .expect(400);
    assert.match(JSON.stringify(short.body), /passphrase must hold at least 12 characters/);
    const none = await admin.agent
      .post('/api/v1/backup')
      .set('X-CSRF-Token', admin.csrf)
      .send({})
      .expect(400);
    assert.match(JSON.stringify(none.body), /passphrase is required/);
  });

  it('the admin page: form, mismatch re-renders with 400, a match downloads', async () => {
    const { agent } = await signIn(f.app, 'admin', PASSWORD);
    const page = await agent.get('/admin/backup').expect(200);
    assert.match(page.text, /Download backup/);
    assert.match(page.text, /No scheduled backups/);
    const csrf = csrfFromHtml(page.text);
    const bad = await agent
      .post('/admin/backup')
      .type('form')
      .send({ _csrf: csrf, passphrase: PASS, passphrase2: 'something else entirely' })
      .expect(400);
    assert.match(bad.text, /the two passphrases differ/);
    const ok = await agent
      .post('/admin/backup')
      .type('form')
      .send({ _csrf: csrf, passphrase: PASS, passphrase2: PASS })
      .buffer(true)
      .parse(binary)
      .expect(200);
    assert.equal(decodeBackup(ok.body as Buffer, PASS).entries.length, 4);
    assert.equal((await f.ctx.store.listAudit({ action: 'backup.download' })).length, 2);
  });
});
