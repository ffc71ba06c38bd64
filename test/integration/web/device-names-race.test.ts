import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../../src/lib/exec.js';
import { profileBlock } from '../../helpers/cli.js';
import { signIn, webFixture, type WebFixture } from './helpers.js';

describe('web: unambiguous certificate names, disable during issuance, device maximum', function () {
  this.timeout(180_000);
  let f: WebFixture;
  beforeEach(async () => {
    f = await webFixture();
  });
  afterEach(() => f.close());

  async function userWithPassword(name: string): Promise<void> {
    await f.ctx.users.create({ actor: 'test', name, role: 'user', password: 'correct horse battery' });
  }

  it('400 a device name with "." (user "john" + "smith.laptop" would read as "john.smith" + "laptop")', async () => {
    await userWithPassword('john');
    const john = await signIn(f.app, 'john');
    const res = await john.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', john.csrf)
      .send({ name: 'smith.laptop' })
      .expect(400);
    assert.equal(res.body.error.field, 'name');
    assert.match(res.body.error.message, /no "\."/);
    assert.equal((await f.ctx.store.listCerts({})).items.filter((c) => c.kind === 'client').length, 0);
  });

  it('a name issued before the rule keeps working and never passes to the other user, both directions', async () => {
    await userWithPassword('john');
    await userWithPassword('john.smith');
    // Direction 1: john's legacy device "smith.laptop" (made by an admin with the CLI's free naming).
    const legacy = await f.ctx.devices.issue({
      actor: 'cli',
      owner: 'john',
      commonName: 'john.smith.laptop',
      deviceName: 'smith.laptop',
    });
    const js = await signIn(f.app, 'john.smith');
    const asJs = () => js.agent.post('/api/v1/devices').set('X-CSRF-Token', js.csrf).send({ name: 'laptop' });
    assert.equal((await asJs()).status, 409, 'valid legacy certificate holds the name');
    // Still john's, still working; once revoked, the name is still not john.smith's to take.
    const john = await signIn(f.app, 'john');
    const mine = await john.agent.get('/api/v1/devices').expect(200);
    assert.deepEqual(
      (mine.body.items as { commonName: string; status: string }[]).map((d) => [d.commonName, d.status]),
      [['john.smith.laptop', 'valid']],
    );
    await john.agent
      .delete(`/api/v1/devices/${legacy.cert.serial}`)
      .set('X-CSRF-Token', john.csrf)
      .expect(200);
    const res = await asJs();
    assert.equal(res.status, 409);
    assert.match(res.body.error.message, /belongs to another owner/);
    // john.smith can use any other name.
    await js.agent.post('/api/v1/devices').set('X-CSRF-Token', js.csrf).send({ name: 'phone' }).expect(201);

    // Direction 2: john.smith's own "laptop" under a fresh name pair, then john (CLI-made) tries the same name.
    await userWithPassword('ann');
    await userWithPassword('ann.lee');
    const al = await signIn(f.app, 'ann.lee');
    const made = await al.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', al.csrf)
      .set('Accept', 'application/json')
      .send({ name: 'laptop' })
      .expect(201);
    assert.equal(made.body.device.commonName, 'ann.lee.laptop');
    await al.agent.delete(`/api/v1/devices/${made.body.device.id}`).set('X-CSRF-Token', al.csrf).expect(200);
    await assert.rejects(
      f.ctx.devices.issue({
        actor: 'cli',
        owner: 'ann',
        commonName: 'ann.lee.laptop',
        deviceName: 'lee.laptop',
      }),
      /belongs to another owner/,
    );
    // The owner can reissue the same name after revocation.
    await al.agent.post('/api/v1/devices').set('X-CSRF-Token', al.csrf).send({ name: 'laptop' }).expect(201);
  });

  it('6 parallel rsa-3072 creates, disable 150 ms later: once the disable returns no certificate verifies', async () => {
    const admin = await signIn(f.app, 'admin');
    const alice = await signIn(f.app, 'alice');
    await f.ctx.server.ensure();
    const creates = Array.from({ length: 6 }, (_, i) =>
      alice.agent
        .post('/api/v1/devices')
        .set('X-CSRF-Token', alice.csrf)
        .set('Accept', 'application/json')
        .send({ name: `race${i}`, keyType: 'rsa-3072' })
        .then((r) => r),
    );
    await new Promise((r) => setTimeout(r, 150));
    const disable = await admin.agent
      .patch('/api/v1/users/alice')
      .set('X-CSRF-Token', admin.csrf)
      .send({ disabled: true });
    assert.equal(disable.status, 200);
    const crlAtDisable = (await f.ctx.revocation.currentCrl())!.pem;
    const results = await Promise.all(creates);
    const aliceId = (await f.ctx.store.getUserByName('alice'))!.id;
    assert.equal((await f.ctx.store.listCerts({ ownerId: aliceId, status: 'valid' })).total, 0);
    // Whatever answered 201 must fail `openssl verify -crl_check` against the CRL of the moment the disable returned.
    writeFileSync(join(f.dir, 'ca.pem'), f.ctx.ca.certPem);
    writeFileSync(join(f.dir, 'crl.pem'), crlAtDisable);
    for (const r of results) {
      if (r.status !== 201) {
        assert.ok([400, 401].includes(r.status), `${r.status} ${JSON.stringify(r.body)}`);
        continue;
      }
      const certFile = join(f.dir, `${r.body.device.serial}.pem`);
      writeFileSync(certFile, profileBlock(r.body.profile, 'cert'));
      const v = await exec(
        [
          'openssl',
          'verify',
          '-crl_check',
          '-CAfile',
          join(f.dir, 'ca.pem'),
          '-CRLfile',
          join(f.dir, 'crl.pem'),
          certFile,
        ],
        { check: false },
      );
      assert.notEqual(v.code, 0, `certificate ${r.body.device.serial} still verifies: ${v.stdout}`);
      assert.match(v.stdout + v.stderr, /revoked/);
    }
  });

  it('409 from the API when the device maximum (10) is reached; revoking one frees a place', async () => {
    const alice = await signIn(f.app, 'alice');
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await alice.agent
        .post('/api/v1/devices')
        .set('X-CSRF-Token', alice.csrf)
        .set('Accept', 'application/json')
        .send({ name: `d${i}` })
        .expect(201);
      ids.push(r.body.device.id as string);
    }
    const over = await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'd10' });
    assert.equal(over.status, 409);
    assert.match(over.body.error.message, /maxValidPerUser/);
    await alice.agent.delete(`/api/v1/devices/${ids[0]}`).set('X-CSRF-Token', alice.csrf).expect(200);
    await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'd10' })
      .expect(201);
  });
});
