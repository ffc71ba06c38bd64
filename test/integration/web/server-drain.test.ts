/**
 * `close()` of the web server (what `serve` does on SIGTERM: a pod deleted by a drain or a rolling update)
 * lets a request in flight finish and answer, instead of cutting its connection: with several replicas a
 * request that already committed (a certificate issued) and lost its answer cannot be retried (the name
 * is taken). Found by the real-node e2e of k8s-postgres/, where a download during the pod's deletion got
 * "socket hang up" and its retry 409. Requests are written by hand on a TCP socket, so the test holds one
 * in flight (headers sent, body not yet) while the server closes.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startServer, type RunningServer } from '../../../src/web/server.js';
import { PASSWORD, webFixture, type WebFixture } from './helpers.js';

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends until it closes the connection, and whether it reset it. */
function readAll(s: Socket): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('error', (err) => resolve({ text, error: err.message }));
    s.on('close', () => resolve({ text }));
  });
}

describe('web server close(): requests in flight answer before the server goes', function () {
  this.timeout(30_000);
  let f: WebFixture;
  let server: RunningServer | undefined;
  before(async () => {
    f = await webFixture();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  after(() => f.close());

  const body = JSON.stringify({ name: 'alice', password: PASSWORD });
  const head = (port: number) =>
    `POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;

  it('a request whose body is still coming when close() starts gets its answer, with Connection: close', async () => {
    server = await startServer({ ctx: f.ctx, host: '127.0.0.1', port: 0 });
    const port = server.port;
    const s = await open(port);
    const reply = readAll(s);
    s.write(head(port) + body.slice(0, 10));
    await new Promise((r) => setTimeout(r, 200)); // the server has the request (headers parsed)
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    server = undefined;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(closed, false, 'close() waits for the request in flight');
    // no new connections meanwhile
    await assert.rejects(open(port), 'no new connection while closing');
    s.write(body.slice(10));
    const { text, error } = await reply;
    assert.equal(error, undefined, `the connection was not reset: ${error}`);
    assert.match(text, /^HTTP\/1\.1 200 /, `the login answered: ${text.slice(0, 200)}`);
    assert.match(text, /^connection: close\r$/im, 'and the connection ends after the answer');
    await closing;
  });

  it('an idle kept-alive connection is closed at once and a busy one is cut after the drain time', async () => {
    server = await startServer({ ctx: f.ctx, host: '127.0.0.1', port: 0, drainMs: 500 });
    const idle = await open(server.port);
    const idleEnd = readAll(idle);
    const busy = await open(server.port);
    const busyEnd = readAll(busy);
    busy.write(head(server.port) + body.slice(0, 10)); // and never the rest
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await server.close();
    server = undefined;
    const took = Date.now() - t0;
    assert.equal((await idleEnd).text, '', 'the idle connection closed without an answer');
    assert.doesNotMatch((await busyEnd).text, /^HTTP/, 'the request that never finished got no answer');
    assert.ok(took >= 400, `close() waited for the busy connection until the drain time (${took} ms)`);
  });
});
