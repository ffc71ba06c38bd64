// A signed-in developer creating a device through the web API, as the e2e suites do it: the response
// body is the `.ovpn` profile (text, whatever its content type says), and the certificate it carries is
// found again in the certificate list.
import assert from 'node:assert/strict';
import type request from 'supertest';

type Agent = ReturnType<typeof request.agent>;

/** POST /api/v1/devices with the profile body read as text. */
export async function postDevice(agent: Agent, csrf: string, name: string) {
  return await agent
    .post('/api/v1/devices')
    .set('X-CSRF-Token', csrf)
    .send({ name })
    .buffer(true)
    .parse((r, cb) => {
      let text = '';
      r.on('data', (d: Buffer) => (text += d.toString()));
      r.on('end', () => cb(null, text));
    });
}

/** A new device of `owner`: its profile and the serial of its (valid) certificate. */
export async function newDeviceProfile(
  agent: Agent,
  csrf: string,
  device: string,
  owner = 'admin',
): Promise<{ profile: string; serial: string }> {
  const res = await postDevice(agent, csrf, device);
  assert.equal(res.status, 201, String(res.body));
  const commonName = `${owner}.${device}`;
  const certs = await agent
    .get(`/api/v1/certs?q=${encodeURIComponent(commonName)}&perPage=100`)
    .set('Accept', 'application/json');
  const list = (certs.body as { items: { commonName: string; serial: string; status: string }[] }).items;
  const cert = list.find((c) => c.commonName === commonName && c.status === 'valid');
  assert.ok(cert, `certificate of ${commonName} listed`);
  return { profile: String(res.body), serial: cert.serial };
}
