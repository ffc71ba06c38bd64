/**
 * CA rotation with the real openvpn 2.6 in network namespaces, everything through podgate's CLI:
 * office (172.18.12.100) ─ node (172.18.12.21, `podgate server run`).
 *
 * Proves: during the overlap (`ca rotate`) the server trusts both CAs (bundle) and loads one CRL per CA
 * from one crl-verify file: a profile of the old CA and one of the new CA both connect, and a revoked one
 * of each is refused. After `ca retire-old` only new-CA profiles connect (the server certificate is then
 * re-issued by the new CA, which the new profiles trust). `server run` is started once and never
 * restarted: it notices both commands by itself and restarts only openvpn.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { exec } from '../../src/lib/exec.js';
import { loadConfig } from '../../src/config/load.js';
import { serverPaths } from '../../src/openvpn/server-files.js';
import {
  canUseNetns,
  cleanupAll,
  officeNodePod,
  OFFICE_NODE_POD as A,
  type SpawnedProcess,
  type Topology,
} from '../helpers/netns.js';
import { profileBlock } from '../helpers/cli.js';
import { startClient, waitClientConnected } from '../helpers/openvpn.js';

const CLI = join(process.cwd(), 'dist/src/cli.js');
const PORT = 30031;

function count(text: string, re: RegExp): number {
  return (text.match(new RegExp(re.source, 'g')) ?? []).length;
}

describe('e2e: CA rotation with openvpn 2.6 (overlap: both CAs; after retire-old: new CA only)', function () {
  this.timeout(240_000);
  let topo: Topology;
  let work: string;
  let cfgFile: string;
  let server: SpawnedProcess;
  const profiles: Record<string, string> = {};

  const cli = (...args: string[]) =>
    exec([process.execPath, CLI, '--config', cfgFile, ...args], { timeoutMs: 60_000 });
  const config = () => loadConfig({ file: cfgFile });

  async function issue(name: string): Promise<void> {
    const out = join(work, `${name}.ovpn`);
    await cli('cert', 'issue', name, '--owner', 'admin', '--out', out);
    profiles[name] = readFileSync(out, 'utf8');
  }

  async function startServer(): Promise<void> {
    if (server?.running) await server.stop(8000);
    server = topo.spawn('node', [process.execPath, CLI, '--config', cfgFile, 'server', 'run'], {
      logFile: join(work, `server-run-${Date.now()}.log`),
    });
    await server.waitFor(/Initialization Sequence Completed/, 30_000);
  }

  /** Connects, waits for the tunnel, disconnects. */
  async function connects(name: string): Promise<void> {
    const c = startClient(topo.name('office'), work, `${name}-${Date.now()}`, profiles[name]!, [
      '--connect-retry',
      '1',
      '1',
    ]);
    try {
      await waitClientConnected(c, 20_000);
    } finally {
      await c.stop(5000);
    }
  }

  /**
   * Starts a client and waits until the server log (or, with `side: 'client'`, the client's own log)
   * shows `re` once more; the client never completes its connection.
   */
  async function refused(name: string, re: RegExp, side: 'server' | 'client' = 'server'): Promise<void> {
    const before = count(server.output(), re);
    const c = startClient(topo.name('office'), work, `${name}-${Date.now()}`, profiles[name]!, [
      '--connect-retry',
      '1',
      '1',
    ]);
    const seen = () => (side === 'server' ? count(server.output(), re) > before : re.test(c.output()));
    try {
      const end = Date.now() + 20_000;
      while (!seen()) {
        if (Date.now() > end)
          throw new Error(
            `timed out waiting for ${name} to be refused (${side} log ${re}); server:\n${server.output().slice(-2500)}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.doesNotMatch(c.output(), /Initialization Sequence Completed/, `${name} must not connect`);
    } finally {
      await c.stop(5000);
    }
  }

  /**
   * Waits for the running `server run` to notice a CA change and restart openvpn with it (one more
   * "Initialization Sequence Completed" than `before`), without the process being restarted.
   */
  async function reloaded(before: number): Promise<void> {
    const pid = server.pid;
    const end = Date.now() + 30_000;
    while (count(server.output(), /Initialization Sequence Completed/) <= before) {
      if (Date.now() > end)
        throw new Error(`server run did not reload the CA set:\n${server.output().slice(-2500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(server.running, 'server run still running');
    assert.equal(server.pid, pid, 'the same server run process');
  }
  const inits = () => count(server.output(), /Initialization Sequence Completed/);

  const issuerOf = (name: string) => new X509Certificate(profileBlock(profiles[name]!, 'cert')).issuer;

  before(async function () {
    if (!(await canUseNetns())) {
      if (process.env.CI === 'true') throw new Error('network namespaces need root + iproute2');
      this.skip();
    }
    topo = await officeNodePod({ prefix: 'pgr' });
    work = mkdtempSync(join(tmpdir(), 'pg-ca-rotation-'));
    writeFileSync(join(work, 'admin.pw'), 'admin-password-for-tests\n', { mode: 0o600 });
    cfgFile = join(work, 'podgate.yaml');
    writeFileSync(
      cfgFile,
      [
        `dataDir: ${join(work, 'data')}`,
        'ca: { keyType: ec-p384 }',
        'vpn:',
        `  port: ${PORT}`,
        `  endpoints: ["${A.node}"]`,
        `  routes: { pods: ["${A.podCidr}"] }`,
        '',
      ].join('\n'),
    );
    await exec([process.execPath, CLI, '--config', cfgFile, 'init'], {
      env: { ...process.env, PODGATE_ADMIN_PASSWORD_FILE: join(work, 'admin.pw') },
    });
    await issue('old.ok');
    await issue('old.bad');
    await cli('cert', 'revoke', 'old.bad', '--reason', 'keyCompromise');
    await startServer();
  });

  after(async () => {
    if (server?.running) await server.stop(8000);
    await cleanupAll();
    if (work) {
      try {
        rmSync(dirname(serverPaths(config()).activeCrl), { recursive: true, force: true });
      } catch {
        /* config never written */
      }
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('before the rotation: the old profile connects, the revoked one is refused', async () => {
    await connects('old.ok');
    await refused('old.bad', /certificate revoked|CRL CHECK FAILED/i);
  });

  it('during the overlap: an old-CA and a new-CA client both connect; a revoked one of each is refused', async () => {
    const started = inits();
    const rotate = await cli('ca', 'rotate', '--key-type', 'rsa-3072');
    assert.match(rotate.stdout, /new CA: podgate CA \d{12}/);
    await reloaded(started);
    await issue('new.ok');
    await issue('new.bad');
    assert.notEqual(issuerOf('new.ok'), issuerOf('old.ok'), 'new profiles come from the new CA');
    // New profiles carry both CAs: the server keeps its old-CA certificate during the overlap.
    assert.equal(count(profileBlock(profiles['new.ok']!, 'ca'), /BEGIN CERTIFICATE/), 2);
    await cli('cert', 'revoke', 'new.bad', '--reason', 'keyCompromise'); // applied by the running agent

    const crl = readFileSync(serverPaths(config()).activeCrl, 'utf8');
    assert.equal(count(crl, /BEGIN X509 CRL/), 2, 'one CRL per CA in the crl-verify file');
    const serverCa = readFileSync(serverPaths(config()).ca, 'utf8');
    assert.equal(count(serverCa, /BEGIN CERTIFICATE/), 2, 'the server trusts both CAs');

    await connects('old.ok');
    await connects('new.ok');
    await refused('old.bad', /certificate revoked|CRL CHECK FAILED/i);
    await refused('new.bad', /certificate revoked|CRL CHECK FAILED/i);

    const status = await cli('ca', 'status', '--json');
    const s = JSON.parse(status.stdout) as { onPreviousCa: { commonName: string }[] };
    assert.deepEqual(
      s.onPreviousCa.map((c) => c.commonName),
      ['old.ok'],
      'ca status names the devices still on the old CA',
    );
  });

  it('after retire-old: only new-CA clients connect', async () => {
    const started = inits();
    const r = await cli('ca', 'retire-old');
    assert.match(r.stdout, /retired podgate CA/);
    await reloaded(started);
    const serverCa = readFileSync(serverPaths(config()).ca, 'utf8');
    assert.equal(count(serverCa, /BEGIN CERTIFICATE/), 1);
    await connects('new.ok');
    // The old profile trusts only the old CA: it rejects the server's new-CA certificate (it sees the new CA
    // in the chain and no trust anchor for it; the server never gets to check the client).
    await refused(
      'old.ok',
      /VERIFY ERROR: depth=\d, error=(unable to get local issuer certificate|self-signed certificate in certificate chain)/,
      'client',
    );
    // And the server itself no longer trusts the old CA: the old certificate inside a profile that trusts
    // the new server certificate is refused by the server.
    const withCa = profiles['old.ok']!.replace(
      /<ca>\n[\s\S]*?\n<\/ca>/,
      `<ca>\n${profileBlock(profiles['new.ok']!, 'ca').trim()}\n</ca>`,
    );
    profiles['old.ok+new-ca'] = withCa;
    await refused('old.ok+new-ca', /VERIFY ERROR: depth=\d, error=[^:]+: CN=podgate CA, serial/);
    await refused('new.bad', /certificate revoked|CRL CHECK FAILED/i);
  });
});
