import assert from 'node:assert/strict';
import { ProbeResponder } from '../../../src/openvpn/probe-responder.js';

const ORIGIN = 'http://podgate.example.test:8080';
const NONCE = 'n0nce-for-the-test-1234';

describe('ProbeResponder (a real listener on loopback)', () => {
  let r: ProbeResponder;
  afterEach(async () => {
    await r?.stop();
  });

  async function listening(o: { allowedOrigin?: string } = {}): Promise<string> {
    r = new ProbeResponder({ host: '127.0.0.1', port: 0, allowedOrigin: o.allowedOrigin, retryMs: 20 });
    r.start();
    const end = Date.now() + 5000;
    while (r.port === undefined && Date.now() < end) await new Promise((ok) => setTimeout(ok, 10));
    return `http://127.0.0.1:${r.port}`;
  }

  it('answers reachable + the nonce, with CORS for the web origin only', async () => {
    const base = await listening({ allowedOrigin: ORIGIN });
    const ok = await fetch(`${base}/connection-probe?nonce=${NONCE}`, { headers: { Origin: ORIGIN } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN);
    assert.deepEqual(await ok.json(), { podgate: 'reachable', nonce: NONCE });
    const other = await fetch(`${base}/connection-probe?nonce=${NONCE}`, {
      headers: { Origin: 'http://elsewhere.example' },
    });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    await other.arrayBuffer();
  });

  it('404 for any other path; 400 for a bad nonce', async () => {
    const base = await listening({ allowedOrigin: ORIGIN });
    assert.equal((await fetch(`${base}/`)).status, 404);
    assert.equal((await fetch(`${base}/metrics`)).status, 404);
    assert.equal((await fetch(`${base}/connection-probe?nonce=x`)).status, 400);
  });

  it('keeps retrying while its address does not exist, and stops cleanly', async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails with EADDRNOTAVAIL, as before the tun is up.
    r = new ProbeResponder({ host: '192.0.2.1', port: 0, allowedOrigin: ORIGIN, retryMs: 10 });
    r.start();
    await new Promise((ok) => setTimeout(ok, 60));
    assert.equal(r.port, undefined);
    await r.stop();
  });
});
