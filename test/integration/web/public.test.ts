import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { exec } from '../../../src/lib/exec.js';
import { logger, setLogLevel } from '../../../src/lib/logger.js';
import type { ClusterPort } from '../../../src/web/cluster-port.js';
import { startServer } from '../../../src/web/server.js';
import { PASSWORD, signIn, webFixture, type WebFixture } from './helpers.js';

const SECRET = 'internal detail /etc/podgate/secret-path';

/** A cluster module that fails with an unexpected (non-AppError) error. */
const brokenCluster: ClusterPort = {
  discover: async () => {
    throw new Error(SECRET);
  },
  lastDiscovery: async () => undefined,
  manifests: async () => [],
  deploy: async () => {
    throw new Error(SECRET);
  },
  status: async () => {
    throw new Error(SECRET);
  },
};

describe('web public endpoints, headers and errors', function () {
  this.timeout(60_000);
  let f: WebFixture;
  let tmp: string;
  before(async () => {
    f = await webFixture({ cluster: brokenCluster });
    tmp = mkdtempSync(join(tmpdir(), 'podgate-web-pub-'));
  });
  after(async () => {
    await f?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('sets CSP default-src self, frame-ancestors none, nosniff, no-referrer, and no HSTS over http', async () => {
    for (const path of ['/login', '/api/v1/me', '/healthz', '/nope']) {
      const res = await request(f.app).get(path);
      const csp = res.headers['content-security-policy'] ?? '';
      assert.match(csp, /default-src 'self'/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.doesNotMatch(csp, /unsafe-inline/, path);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(res.headers['referrer-policy'], 'no-referrer', path);
      assert.equal(res.headers['strict-transport-security'], undefined, path);
      assert.equal(res.headers['x-powered-by'], undefined, path);
      assert.ok(res.headers['x-request-id'], path);
    }
  });

  it('healthz and readyz answer', async () => {
    assert.equal((await request(f.app).get('/healthz').expect(200)).text, 'ok\n');
    const ready = await request(f.app).get('/readyz').expect(200);
    assert.deepEqual(ready.body, { ready: true, checks: { store: 'ok', crl: 'ok' } });
  });

  it('serves a CRL that openssl verifies against the CA', async () => {
    const res = await request(f.app)
      .get('/crl.pem')
      .buffer(true)
      .parse((r, cb) => {
        let d = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (d += c));
        r.on('end', () => cb(null, d));
      })
      .expect(200);
    assert.match(res.headers['content-type']!, /application\/pkix-crl/);
    writeFileSync(join(tmp, 'crl.pem'), res.body as string);
    writeFileSync(join(tmp, 'ca.pem'), f.ctx.ca.certPem);
    const out = await exec([
      'openssl',
      'crl',
      '-noout',
      '-in',
      join(tmp, 'crl.pem'),
      '-CAfile',
      join(tmp, 'ca.pem'),
    ]);
    assert.match(out.stderr + out.stdout, /verify OK/);
  });

  it('exposes Prometheus metrics with request counts by route pattern (with the metrics token)', async () => {
    const file = join(tmp, 'metrics-token');
    writeFileSync(file, 'metrics-token-for-the-test\n', { mode: 0o600 });
    const m = await webFixture({}, { 'web.metricsTokenFile': file });
    try {
      await request(m.app).get('/healthz');
      const res = await request(m.app)
        .get('/metrics')
        .set('Authorization', 'Bearer metrics-token-for-the-test')
        .expect(200);
      assert.match(res.headers['content-type']!, /text\/plain/);
      assert.match(
        res.text,
        /podgate_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/,
      );
      assert.match(res.text, /podgate_certificates\{status="valid"\} \d+/);
      assert.match(res.text, /podgate_crl_next_update_seconds \d/);
      assert.match(res.text, /podgate_process_resident_memory_bytes/);
      assert.match(res.text, /podgate_access_dropped_packets 0/, 'no local server: 0');
      mkdirSync(join(m.dir, 'server'), { recursive: true });
      writeFileSync(
        join(m.dir, 'server', 'access-status.json'),
        JSON.stringify({ state: 'stale', droppedPackets: 42 }),
      );
      const again = await request(m.app)
        .get('/metrics')
        .set('Authorization', 'Bearer metrics-token-for-the-test')
        .expect(200);
      assert.match(again.text, /podgate_access_dropped_packets 42/);
      assert.match(again.text, /podgate_access_stale 1/);
    } finally {
      await m.close();
    }
  });

  it('404 renders as JSON for the API and clients that ask for JSON, HTML for browsers', async () => {
    const api = await request(f.app).get('/api/v1/nothing').expect(404);
    assert.equal(api.body.error.code, 'not_found');
    const json = await request(f.app).get('/nothing').set('Accept', 'application/json').expect(404);
    assert.equal(json.body.error.code, 'not_found');
    const html = await request(f.app).get('/nothing').set('Accept', 'text/html').expect(404);
    assert.match(html.headers['content-type']!, /text\/html/);
    assert.match(html.text, /Not found/);
  });

  it('500 for an unexpected error: a request id, never the message or a stack', async () => {
    // The failure is logged at error level on purpose; keep this test's output quiet.
    const level = logger.level;
    setLogLevel('fatal');
    try {
      const admin = await signIn(f.app, 'admin');
      const res = await admin.agent
        .post('/api/v1/cluster/discover')
        .set('X-CSRF-Token', admin.csrf)
        .expect(500);
      assert.equal(res.body.error.code, 'internal');
      assert.equal(res.body.error.message, 'internal error');
      assert.equal(res.body.error.requestId, res.headers['x-request-id']);
      assert.doesNotMatch(JSON.stringify(res.body), /secret-path|at .*\.js/);
      const page = await admin.agent
        .post('/admin/cluster/discover')
        .set('Accept', 'text/html')
        .type('form')
        .send({ _csrf: admin.csrf })
        .expect(500);
      assert.match(page.text, new RegExp(page.headers['x-request-id']!));
      assert.doesNotMatch(page.text, /secret-path|\.js:\d+/);
    } finally {
      setLogLevel(level);
    }
  });

  it('400 for malformed or oversized bodies, without details', async () => {
    const bad = await request(f.app)
      .post('/api/v1/login')
      .set('Content-Type', 'application/json')
      .send('{"name":')
      .expect(400);
    assert.equal(bad.body.error.message, 'request body is not valid');
    const big = await request(f.app)
      .post('/api/v1/login')
      .send({ name: 'alice', password: 'x'.repeat(100_000) })
      .expect(413);
    assert.equal(big.body.error.message, 'request body is too large');
  });

  it('static files are served with nosniff and without directory listing', async () => {
    const css = await request(f.app).get('/static/app.css').expect(200);
    assert.match(css.headers['content-type']!, /text\/css/);
    await request(f.app).get('/static/').expect(404);
    const escape = await request(f.app).get('/static/%2e%2e/package.json');
    assert.ok([403, 404].includes(escape.status), String(escape.status));
    assert.doesNotMatch(escape.text, /"devDependencies"/);
  });
});

describe('web over HTTPS (startServer with tlsCertFile/tlsKeyFile)', function () {
  this.timeout(60_000);
  let f: WebFixture;
  let tmp: string;
  let close: (() => Promise<void>) | undefined;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'podgate-web-tls-'));
    await exec([
      'openssl',
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      join(tmp, 'key.pem'),
      '-out',
      join(tmp, 'cert.pem'),
    ]);
    f = await webFixture(
      {},
      { 'web.tlsCertFile': join(tmp, 'cert.pem'), 'web.tlsKeyFile': join(tmp, 'key.pem') },
    );
  });
  after(async () => {
    await close?.();
    await f?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('sends HSTS and a Secure __Host- cookie', async () => {
    const server = await startServer({ ctx: f.ctx, host: '127.0.0.1', port: 0 });
    close = server.close;
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const body = JSON.stringify({ name: 'alice', password: PASSWORD });
    const res = await new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>(
      (resolve, reject) => {
        const req = httpsRequest(
          `${server.url}/api/v1/login`,
          {
            method: 'POST',
            rejectUnauthorized: false,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (r) => {
            r.resume();
            r.on('end', () => resolve({ status: r.statusCode!, headers: r.headers }));
          },
        );
        req.on('error', reject);
        req.end(body);
      },
    );
    assert.equal(res.status, 200);
    assert.match(String(res.headers['strict-transport-security']), /max-age=31536000/);
    const cookie = (res.headers['set-cookie'] as string[]).find((c) => c.startsWith('__Host-podgate_sid='))!;
    assert.ok(cookie);
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
  });
});
