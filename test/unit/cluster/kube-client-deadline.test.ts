/**
 * The per-request deadline of the real client (kube-client.ts) aborts the HTTP request. A server that
 * accepts a request and never answers is something a real API server cannot be made to do on demand, so
 * this uses a bare loopback HTTP server that only records what happens to its requests.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { createKubeApi } from '../../../src/cluster/kube-client.js';

describe('kube client deadline', () => {
  let server: Server;
  let port: number;
  const open = new Set<IncomingMessage>();
  let closed = 0;

  before(async () => {
    server = createServer((req) => {
      open.add(req);
      req.socket.on('close', () => {
        open.delete(req);
        closed += 1;
      });
      // never answers
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('a request without an answer fails with Timeout and its connection is closed (not left hanging)', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const api = createKubeApi(kc, { timeoutMs: 200 });
    await assert.rejects(
      api.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', namespace: 'default' }),
      /read ConfigMap default\/x: Timeout: no answer within 200 ms/,
    );
    for (let i = 0; i < 40 && open.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(open.size, 0, 'the aborted request closed its connection');
    assert.ok(closed >= 1);
  });
});
