import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { exec } from '../../../src/lib/exec.js';
import { DISCOVERY_SETTING } from '../../../src/services/network.js';
import { csrfFromHtml, signIn, webFixture, type Client, type WebFixture } from './helpers.js';

function block(profile: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>\\n([\\s\\S]*?)</${tag}>`).exec(profile)?.[1];
}

/** Parses a binary (profile) response as text. */
function text(res: request.Response): string {
  if (typeof res.body === 'string') return res.body;
  return Buffer.isBuffer(res.body) ? res.body.toString('utf8') : res.text;
}
const asText = (res: request.Response, cb: (err: Error | null, body: string) => void): void => {
  let data = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => (data += c));
  res.on('end', () => cb(null, data));
};

describe('web devices: create, download, list, revoke own', function () {
  this.timeout(60_000);
  let f: WebFixture;
  let alice: Client;
  let bob: Client;
  let tmp: string;
  before(async () => {
    f = await webFixture();
    alice = await signIn(f.app, 'alice');
    bob = await signIn(f.app, 'bob');
    tmp = mkdtempSync(join(tmpdir(), 'podgate-web-dev-'));
  });
  after(async () => {
    await f?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function create(
    c: Client,
    name: string,
    extra: Record<string, string> = {},
  ): Promise<request.Response> {
    return c.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', c.csrf)
      .send({ name, ...extra })
      .buffer(true)
      .parse(asText);
  }

  let laptopSerial = '';
  it('201 returns the .ovpn once: no-store, attachment named <cn>.ovpn, and a certificate openssl accepts', async () => {
    const res = await create(alice, 'laptop');
    assert.equal(res.status, 201);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['content-disposition'], 'attachment; filename="alice.laptop.ovpn"');
    assert.match(res.headers['content-type']!, /^application\/x-openvpn-profile/);
    const profile = text(res);
    assert.match(profile, /^client$/m);
    assert.match(profile, /^remote vpn\.example\.test 30030 udp$/m);
    assert.ok(block(profile, 'key'), 'key inline');
    writeFileSync(join(tmp, 'ca.pem'), block(profile, 'ca')!);
    writeFileSync(join(tmp, 'cert.pem'), block(profile, 'cert')!);
    const v = await exec([
      'openssl',
      'verify',
      '-CAfile',
      join(tmp, 'ca.pem'),
      '-purpose',
      'sslclient',
      join(tmp, 'cert.pem'),
    ]);
    assert.match(v.stdout, /OK/);
    laptopSerial = res.headers['x-certificate-serial']!;
    const s = await exec(['openssl', 'x509', '-noout', '-serial', '-subject', '-in', join(tmp, 'cert.pem')]);
    assert.match(s.stdout, new RegExp(`serial=${laptopSerial}`));
    assert.match(s.stdout, /CN ?= ?alice\.laptop/);
  });

  it('never stores the private key', async () => {
    const row = (await f.ctx.store.getCert(laptopSerial))!;
    assert.doesNotMatch(JSON.stringify(row), /PRIVATE KEY/);
  });

  it('lists the device with name, created, expires, status and last seen; the page shows it', async () => {
    const res = await alice.agent.get('/api/v1/devices').expect(200);
    assert.equal(res.body.items.length, 1);
    const d = res.body.items[0];
    assert.equal(d.name, 'laptop');
    assert.equal(d.status, 'valid');
    assert.equal(d.id, laptopSerial);
    for (const k of ['createdAt', 'notAfter', 'lastSeenAt']) assert.ok(k in d, k);
    const page = await alice.agent.get('/devices').expect(200);
    assert.match(page.text, /alice\.laptop/);
    assert.match(page.text, /never stored/);
    // Bob sees none of it.
    assert.equal((await bob.agent.get('/api/v1/devices').expect(200)).body.items.length, 0);
    assert.doesNotMatch((await bob.agent.get('/devices')).text, /alice\.laptop/);
  });

  it('409 for a second valid device with the same name', async () => {
    const res = await create(alice, 'laptop');
    assert.equal(res.status, 409);
  });

  it('400 naming the field for bad device names, and nothing is issued', async () => {
    const before = (await f.ctx.store.listCerts({})).total;
    for (const name of ['Laptop', '../x', 'a b', '', '.', 'x'.repeat(65), 'laptop\nremote evil 1']) {
      const res = await alice.agent
        .post('/api/v1/devices')
        .set('X-CSRF-Token', alice.csrf)
        .send({ name })
        .expect(400);
      assert.equal(res.body.error.field, 'name', JSON.stringify(name));
      assert.match(res.body.error.message, /^name /);
    }
    const missing = await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', alice.csrf)
      .send({})
      .expect(400);
    assert.equal(missing.body.error.field, 'name');
    const long = await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'x'.repeat(60) })
      .expect(400);
    assert.equal(long.body.error.field, 'name');
    const key = await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'ok', keyType: 'dsa' })
      .expect(400);
    assert.equal(key.body.error.field, 'keyType');
    // The form answers with an HTML page naming the field.
    const page = await alice.agent.get('/devices');
    const form = await alice.agent
      .post('/devices')
      .type('form')
      .send({ name: 'BAD NAME', _csrf: csrfFromHtml(page.text) })
      .expect(400);
    assert.match(form.headers['content-type']!, /html/);
    // The form comes back with the message next to it and the value typed.
    assert.match(form.text, /id="form-error">name must match/);
    assert.match(form.text, /value="BAD NAME" aria-invalid="true"/);
    assert.equal((await f.ctx.store.listCerts({})).total, before);
  });

  it('with a CSR the key stays on the device: the profile has no <key> and the certificate holds the CSR key', async () => {
    const key = join(tmp, 'phone.key');
    const csr = join(tmp, 'phone.csr');
    await exec([
      'openssl',
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-subj',
      '/CN=whatever',
      '-out',
      csr,
    ]);
    const { readFileSync } = await import('node:fs');
    const res = await create(alice, 'phone', { csr: readFileSync(csr, 'utf8') });
    assert.equal(res.status, 201, text(res));
    const profile = text(res);
    assert.equal(block(profile, 'key'), undefined);
    writeFileSync(join(tmp, 'phone.pem'), block(profile, 'cert')!);
    const certPub = await exec(['openssl', 'x509', '-noout', '-pubkey', '-in', join(tmp, 'phone.pem')]);
    const keyPub = await exec(['openssl', 'pkey', '-pubout', '-in', key]);
    assert.equal(certPub.stdout, keyPub.stdout);
    const bad = await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', alice.csrf)
      .send({ name: 'tablet', csr: 'not a csr' })
      .expect(400);
    assert.equal(bad.body.error.field, 'csr');
  });

  it('renewing a device issued from a CSR takes a new CSR (issue 21, item 16): none given is a 400 naming csr, nothing issued', async () => {
    const csrFor = async (name: string) => {
      const csr = join(tmp, `${name}.csr`);
      await exec(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tmp, `${name}.key`), '-subj', '/CN=x', '-out', csr]); // prettier-ignore
      const { readFileSync } = await import('node:fs');
      return readFileSync(csr, 'utf8');
    };
    const made = await create(alice, 'band', { csr: await csrFor('band') });
    assert.equal(made.status, 201, text(made));
    const serial = (await f.ctx.store.getValidCertByCommonName('alice.band'))!.serial;
    const rows = (await f.ctx.store.listCerts({})).total;
    const refused = await alice.agent
      .post(`/api/v1/devices/${serial}/renew`)
      .set('X-CSRF-Token', alice.csrf)
      .set('Accept', 'application/json')
      .send({})
      .expect(400);
    assert.equal(refused.body.error.field, 'csr');
    assert.match(refused.body.error.message, /certificate request/);
    assert.equal((await f.ctx.store.listCerts({})).total, rows, 'no certificate issued');
    const renewed = await alice.agent
      .post(`/api/v1/devices/${serial}/renew`)
      .set('X-CSRF-Token', alice.csrf)
      .set('Accept', 'application/json')
      .send({ csr: await csrFor('band2') })
      .expect(201);
    assert.equal(block(renewed.body.profile as string, 'key'), undefined, 'no server-made key');
    writeFileSync(join(tmp, 'band2.pem'), block(renewed.body.profile as string, 'cert')!);
    const certPub = await exec(['openssl', 'x509', '-noout', '-pubkey', '-in', join(tmp, 'band2.pem')]);
    const keyPub = await exec(['openssl', 'pkey', '-pubout', '-in', join(tmp, 'band2.key')]);
    assert.equal(certPub.stdout, keyPub.stdout, 'the certificate holds the new CSR key');
    // A device with a server-made key may switch to a CSR on renewal too.
    assert.equal((await create(alice, 'kiosk')).status, 201);
    const kiosk = (await f.ctx.store.getValidCertByCommonName('alice.kiosk'))!.serial;
    const switched = await alice.agent
      .post(`/api/v1/devices/${kiosk}/renew`)
      .set('X-CSRF-Token', alice.csrf)
      .set('Accept', 'application/json')
      .send({ csr: await csrFor('kiosk2') })
      .expect(201);
    assert.equal(block(switched.body.profile as string, 'key'), undefined);
    assert.equal((await f.ctx.store.getValidCertByCommonName('alice.kiosk'))!.keyFromCsr, true);
  });

  it('JSON clients can ask for the profile inside a JSON answer (still no-store)', async () => {
    const res = await alice.agent
      .post('/api/v1/devices')
      .set('X-CSRF-Token', alice.csrf)
      .set('Accept', 'application/json')
      .send({ name: 'desktop' })
      .expect(201);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.body.filename, 'alice.desktop.ovpn');
    assert.match(res.body.profile, /<cert>/);
  });

  it("404 (not 403) for someone else's device: get, revoke by API, revoke page and form", async () => {
    await bob.agent.get(`/api/v1/devices/${laptopSerial}`).expect(404);
    const del = await bob.agent
      .delete(`/api/v1/devices/${laptopSerial}`)
      .set('X-CSRF-Token', bob.csrf)
      .expect(404);
    assert.equal(del.body.error.message, 'device not found');
    await bob.agent.get(`/devices/${laptopSerial}/revoke`).expect(404);
    const page = await bob.agent.get('/devices');
    await bob.agent
      .post(`/devices/${laptopSerial}/revoke`)
      .type('form')
      .send({ _csrf: csrfFromHtml(page.text) })
      .expect(404);
    // An admin is also a user here: the developer endpoints are about one's own devices.
    const admin = await signIn(f.app, 'admin');
    await admin.agent.delete(`/api/v1/devices/${laptopSerial}`).set('X-CSRF-Token', admin.csrf).expect(404);
    await bob.agent.get('/api/v1/devices/nothex!').expect(404);
    assert.equal((await f.ctx.store.getCert(laptopSerial))!.status, 'valid');
  });

  it('revokes an own device (confirmation page, then POST); the CRL lists it', async () => {
    const confirm = await alice.agent.get(`/devices/${laptopSerial}/revoke`).expect(200);
    assert.match(confirm.text, /Revoke laptop\?/);
    await alice.agent
      .post(`/devices/${laptopSerial}/revoke`)
      .type('form')
      .send({ _csrf: csrfFromHtml(confirm.text) })
      .expect(303);
    const list = await alice.agent.get('/api/v1/devices').expect(200);
    assert.equal(list.body.items.find((d: { id: string }) => d.id === laptopSerial).status, 'revoked');
    const crl = await request(f.app).get('/crl.pem').expect(200);
    writeFileSync(join(tmp, 'crl.pem'), crl.text);
    const out = await exec(['openssl', 'crl', '-noout', '-text', '-in', join(tmp, 'crl.pem')]);
    assert.match(out.stdout, new RegExp(`Serial Number: ${laptopSerial}`));
    // Revoking again by API: 409 conflict, state unchanged.
    await alice.agent.delete(`/api/v1/devices/${laptopSerial}`).set('X-CSRF-Token', alice.csrf).expect(409);
    const audit = await f.ctx.store.listAudit({ action: 'cert.revoke' });
    assert.equal(audit[0]!.actor, 'alice');
  });

  it('DELETE /api/v1/devices/:id revokes and returns the device', async () => {
    const list = await alice.agent.get('/api/v1/devices');
    const phone = list.body.items.find((d: { name: string }) => d.name === 'phone');
    const res = await alice.agent
      .delete(`/api/v1/devices/${phone.id}`)
      .set('X-CSRF-Token', alice.csrf)
      .expect(200);
    assert.equal(res.body.device.status, 'revoked');
  });

  it("the form download sets the page script's marker cookie (only for a well-formed token)", async () => {
    const page = await alice.agent.get('/devices');
    const csrf = csrfFromHtml(page.text);
    const res = await alice.agent
      .post('/devices')
      .type('form')
      .send({ name: 'watch', dl: 'abc123XYZ9', _csrf: csrf })
      .buffer(true)
      .parse(asText)
      .expect(201);
    const cookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
    assert.ok(
      cookies.some((c) => /^podgate_dl=abc123XYZ9;/.test(c)),
      cookies.join(' | '),
    );
    assert.equal(res.headers['content-disposition'], 'attachment; filename="alice.watch.ovpn"');
    const bad = await alice.agent
      .post('/devices')
      .type('form')
      .send({ name: 'watch2', dl: '<script>', _csrf: csrf })
      .buffer(true)
      .parse(asText)
      .expect(201);
    assert.equal(bad.headers['set-cookie'], undefined);
  });

  it('the set-up page shows the discovered cluster domain, DNS server and routes', async () => {
    await f.ctx.store.setSetting(
      DISCOVERY_SETTING,
      JSON.stringify({
        podCidrs: ['10.244.0.0/16'],
        serviceCidrs: ['10.96.0.0/12'],
        dnsServer: '10.96.0.10',
        clusterDomain: 'corp.internal',
      }),
    );
    const page = await alice.agent.get('/setup').expect(200);
    assert.match(page.text, /kubernetes\.default\.svc\.corp\.internal 10\.96\.0\.10/);
    assert.match(page.text, /<code>10\.244\.0\.0\/16<\/code>/);
    for (const os of [
      'Windows',
      'macOS',
      'NetworkManager',
      'openvpn3',
      'update-systemd-resolved',
      'Check your connection',
    ]) {
      assert.match(page.text, new RegExp(os), os);
    }
  });

  it('the device name can be used again after a revoke', async () => {
    const res = await create(alice, 'laptop');
    assert.equal(res.status, 201);
    assert.notEqual(res.headers['x-certificate-serial'], laptopSerial);
  });
});
