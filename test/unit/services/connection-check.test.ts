import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config/load.js';
import { ConnectionCheckService } from '../../../src/services/connection-check.js';
import { serverTunnelAddress } from '../../../src/lib/cidr.js';

function config(overrides: Record<string, unknown> = {}) {
  return loadConfig({ env: {}, overrides: { 'web.publicUrl': 'https://vpn.example.test', ...overrides } });
}

describe('ConnectionCheckService.plan', () => {
  it('local mode: the server tunnel-side address stands in for the pod IP', async () => {
    const plan = await new ConnectionCheckService({ config: config() }).plan();
    assert.deepEqual(
      plan.targets.map((t) => [t.kind, t.url]),
      [['tunnel', 'http://10.140.0.1:8099/connection-probe']],
    );
    assert.match(plan.targets[0]!.note!, /stands in for a server pod IP/);
    assert.deepEqual(plan.origins, ['http://10.140.0.1:8099']);
    assert.equal(plan.unavailable, undefined);
  });

  it('cluster mode: each ready server pod IP, and the manager Service by name and by resolved ClusterIP', async () => {
    const resolved: string[] = [];
    const svc = new ConnectionCheckService({
      config: config({ 'connectionCheck.serviceDnsUrl': 'http://podgate-manager.podgate.svc.cluster.local' }),
      serverPodIps: async () => ['10.244.1.7', '10.244.2.9'],
      resolve: async (h) => {
        resolved.push(h);
        return '10.96.0.80';
      },
    });
    const plan = await svc.plan();
    assert.deepEqual(
      plan.targets.map((t) => [t.kind, t.url]),
      [
        ['pod', 'http://10.244.1.7:8099/connection-probe'],
        ['pod', 'http://10.244.2.9:8099/connection-probe'],
        ['service-ip', 'http://10.96.0.80/connection-probe'],
        ['service-dns', 'http://podgate-manager.podgate.svc.cluster.local/connection-probe'],
      ],
    );
    await svc.plan();
    assert.deepEqual(resolved, ['podgate-manager.podgate.svc.cluster.local'], 'resolved once (cached)');
  });

  it('a pod lookup that fails falls back to the tunnel address; a name that does not resolve drops the ClusterIP check', async () => {
    const plan = await new ConnectionCheckService({
      config: config({
        'connectionCheck.serviceDnsUrl': 'http://podgate-manager.podgate.svc.cluster.local:8080',
      }),
      serverPodIps: () => Promise.reject(new Error('API server down')),
      resolve: () => Promise.reject(new Error('ENOTFOUND')),
    }).plan();
    assert.deepEqual(
      plan.targets.map((t) => t.kind),
      ['tunnel', 'service-dns'],
    );
  });

  it('an API server that does not answer within the lookup timeout does not hold up the page', async () => {
    const plan = await new ConnectionCheckService({
      config: config(),
      serverPodIps: () => new Promise<string[]>(() => undefined),
      lookupTimeoutMs: 50,
    }).plan();
    assert.deepEqual(
      plan.targets.map((t) => t.kind),
      ['tunnel'],
    );
    assert.match(plan.targets[0]!.note!, /No server pod address is known/);
  });

  it('unavailable without web.publicUrl (no probe would let the page read it)', async () => {
    const plan = await new ConnectionCheckService({
      config: loadConfig({ env: {}, overrides: {} }),
    }).plan();
    assert.match(plan.unavailable!, /web\.publicUrl/);
  });

  it('port 0 turns the listener checks off', async () => {
    const plan = await new ConnectionCheckService({ config: config({ 'connectionCheck.port': 0 }) }).plan();
    assert.deepEqual(plan.targets, []);
    assert.match(plan.unavailable!, /Nothing to check/);
  });

  it('the server takes the first host of vpn.clientSubnet', () => {
    assert.equal(serverTunnelAddress('10.140.0.0/16'), '10.140.0.1');
    assert.equal(serverTunnelAddress('192.168.77.0/24'), '192.168.77.1');
  });

  it('config: a service URL with a path is refused, naming the field', () => {
    assert.throws(
      () => config({ 'connectionCheck.serviceIpUrl': 'http://10.96.0.80/x' }),
      /connectionCheck\.serviceIpUrl/,
    );
  });
});
