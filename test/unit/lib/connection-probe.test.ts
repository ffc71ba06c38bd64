import assert from 'node:assert/strict';
import { probeAnswer, webOrigin } from '../../../src/lib/connection-probe.js';

const ORIGIN = 'https://vpn.example.test';
const NONCE = 'AbCdEfGhIjKlMnOpQrSt_-12';

describe('connection probe answer', () => {
  it('200 reachable + the nonce, readable by the web origin only', () => {
    const a = probeAnswer('GET', NONCE, ORIGIN, ORIGIN);
    assert.equal(a.status, 200);
    assert.deepEqual(JSON.parse(a.body), { podgate: 'reachable', nonce: NONCE });
    assert.equal(a.headers['Access-Control-Allow-Origin'], ORIGIN);
    assert.equal(a.headers['Cache-Control'], 'no-store');
  });

  it('no CORS header for another origin, none without a configured one, never *', () => {
    for (const [origin, allowed] of [
      ['https://evil.example', ORIGIN],
      [undefined, ORIGIN],
      [ORIGIN, undefined],
    ] as const) {
      const a = probeAnswer('GET', NONCE, origin, allowed);
      assert.equal(a.headers['Access-Control-Allow-Origin'], undefined, `${origin} / ${allowed}`);
    }
  });

  it('400 for a missing, short, long or odd nonce (nothing echoed)', () => {
    for (const n of [undefined, '', 'short', 'x'.repeat(65), `${NONCE}<script>`, ['a', 'b']]) {
      const a = probeAnswer('GET', n, ORIGIN, ORIGIN);
      assert.equal(a.status, 400, String(n));
      assert.doesNotMatch(a.body, /script/);
    }
  });

  it('OPTIONS answers the private-network preflight for the web origin; POST is 405', () => {
    const pre = probeAnswer('OPTIONS', undefined, ORIGIN, ORIGIN);
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['Access-Control-Allow-Private-Network'], 'true');
    assert.equal(probeAnswer('POST', NONCE, ORIGIN, ORIGIN).status, 405);
  });

  it('webOrigin keeps scheme, host and port of web.publicUrl', () => {
    assert.equal(webOrigin('https://vpn.example.test/'), ORIGIN);
    assert.equal(webOrigin('http://10.0.0.1:8080'), 'http://10.0.0.1:8080');
    assert.equal(webOrigin(undefined), undefined);
  });
});
