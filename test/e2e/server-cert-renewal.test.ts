/**
 * The server certificate renews itself in local mode, with the real openvpn 2.6 in network namespaces:
 * office (172.18.12.100) ─ node (172.18.12.21, ServerSupervisor in this process, openvpn spawned in the
 * node namespace). The stored identity is aged to 10 days before expiry (what 795 days of running
 * would leave); the supervisor's periodic check then issues a new server certificate, rewrites the files
 * and restarts openvpn, and the client connected with its unchanged profile reconnects by itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { setLogLevel } from '../../src/lib/logger.js';
import { ServerSupervisor } from '../../src/openvpn/supervisor.js';
import { openContext, type AppContext } from '../../src/services/context.js';
import { LocalCrlPublisher, serverDir } from '../../src/openvpn/local-publisher.js';
import {
  cleanupAll,
  officeNodePod,
  OFFICE_NODE_POD as A,
  type SpawnedProcess,
  type Topology,
} from '../helpers/netns.js';
import { count, requireNetns } from '../helpers/topology.js';
import { startClient, waitClientConnected } from '../helpers/openvpn.js';

describe('e2e: the server certificate renews itself (local mode: openvpn restarted, clients need nothing)', function () {
  this.timeout(120_000);
  let topo: Topology;
  let work: string;
  let ctx: AppContext;
  let sup: ServerSupervisor;
  let client: SpawnedProcess | undefined;
  const serverLog: string[] = [];

  before(async function () {
    await requireNetns(this);
    setLogLevel('error');
    topo = await officeNodePod({ prefix: 'pgs' });
    work = mkdtempSync(join(tmpdir(), 'pg-server-renew-'));
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: join(work, 'data'),
        'vpn.port': 30032,
        'vpn.endpoints': [A.node],
        'vpn.routes.pods': [A.podCidr],
      },
    });
    ctx = await openContext(config, { publishers: [new LocalCrlPublisher(serverDir(join(work, 'data')))] });
    await ctx.users.create({ actor: 'test', name: 'alice', role: 'user' });
    const node = topo.name('node');
    sup = new ServerSupervisor(ctx, {
      // openvpn runs in the node namespace; `ip netns exec` execs it, so the pid is openvpn's own.
      spawnProcess: (argv, cwd) =>
        spawn('ip', ['netns', 'exec', node, ...argv], { cwd, stdio: ['ignore', 'pipe', 'pipe'] }),
      onOutput: (line) => serverLog.push(line),
      crlCheckEveryMs: 3_600_000,
      lastSeenEveryMs: 0,
    });
    const ready = sup.ready();
    await sup.start();
    await ready;
  });

  after(async () => {
    await client?.stop(5000);
    await sup?.stop();
    await ctx?.close();
    await cleanupAll();
    if (work) {
      try {
        rmSync(dirname(sup.paths.activeCrl), { recursive: true, force: true });
      } catch {
        /* never started */
      }
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('a renewal near expiry restarts openvpn with the new certificate; the client reconnects by itself', async () => {
    const { profile } = await ctx.devices.issue({
      actor: 'alice',
      owner: 'alice',
      commonName: 'alice.laptop',
    });
    client = startClient(topo.name('office'), work, 'alice', profile, ['--connect-retry', '1', '1']);
    await waitClientConnected(client);
    const before = new X509Certificate(readFileSync(sup.paths.cert, 'utf8'));

    assert.equal(await sup.renewServerCert(), false, 'nothing to do while the certificate is fresh');
    // Age the stored identity: 10 days left, inside the 30-day renewal window.
    const stored = JSON.parse((await ctx.store.getSetting('server.identity'))!) as Record<string, string>;
    stored.notAfter = new Date(Date.now() + 10 * 86_400_000).toISOString();
    await ctx.store.setSetting('server.identity', JSON.stringify(stored));
    const startsBefore = sup.starts;
    const connectedBefore = count(client.output(), /Initialization Sequence Completed/);
    const ready = sup.ready();
    assert.equal(await sup.renewServerCert(), true);
    await ready;
    assert.equal(sup.starts, startsBefore + 1, 'openvpn was restarted once');

    const after = new X509Certificate(readFileSync(sup.paths.cert, 'utf8'));
    assert.notEqual(after.serialNumber, before.serialNumber);
    assert.ok(after.checkIssued(new X509Certificate(ctx.ca.certPem)));
    // The old server certificate is revoked as superseded; the client's profile did not change.
    const old = await ctx.store.getCert(before.serialNumber.toUpperCase());
    assert.equal(old?.revocationReason, 'superseded');
    const end = Date.now() + 30_000;
    while (count(client.output(), /Initialization Sequence Completed/) <= connectedBefore) {
      if (Date.now() > end) throw new Error(`client did not reconnect:\n${client.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(client.running, 'the client is still running (it reconnected, it did not exit)');
    assert.match(serverLog.join('\n'), /alice\.laptop.*Data Channel|Initialization Sequence Completed/);
  });
});
