/**
 * Disaster recovery with the real openvpn 2.6 in network namespaces: office (172.18.12.100) ─ node
 * (172.18.12.21, openvpn started from data dir A's server files). A is backed up with `podgate backup`,
 * then its database and CA files are deleted while openvpn keeps running on its old files. `podgate
 * restore` brings the backup into a fresh data dir B. Proves, against that still-running openvpn:
 * a profile issued before the backup still connects; one revoked before the backup stays refused; the
 * CRL signed by B continues A's CRL numbers and openvpn accepts it; a profile issued by B after the
 * restore connects, and one issued and revoked on B is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { exec } from '../../src/lib/exec.js';
import { writeFileAtomic } from '../../src/lib/fs-atomic.js';
import { serverPaths, writeServerFiles } from '../../src/openvpn/server-files.js';
import { openContext } from '../../src/services/context.js';
import {
  canUseNetns,
  cleanupAll,
  officeNodePod,
  OFFICE_NODE_POD as A,
  type SpawnedProcess,
  type Topology,
} from '../helpers/netns.js';
import { startClient, waitClientConnected } from '../helpers/openvpn.js';

const CLI = join(process.cwd(), 'dist/src/cli.js');
const PORT = 30030;

function count(text: string, re: RegExp): number {
  return (text.match(new RegExp(re.source, 'g')) ?? []).length;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('e2e: restore onto a fresh data dir while openvpn keeps running (openvpn 2.6 in namespaces)', function () {
  this.timeout(180_000);
  let topo: Topology;
  let work: string;
  let cfgFile: string;
  let dirA: string;
  let dirB: string;
  let activeCrl: string;
  let server: SpawnedProcess;
  let crlNumberInBackup: number;
  const profiles: Record<string, string> = {};

  const cli = (dataDir: string, ...args: string[]) =>
    exec([process.execPath, CLI, '--config', cfgFile, '--data-dir', dataDir, ...args], { timeoutMs: 60_000 });

  async function issue(dataDir: string, name: string): Promise<void> {
    const out = join(work, `${name}.ovpn`);
    await cli(dataDir, 'cert', 'issue', name, '--owner', 'admin', '--out', out);
    profiles[name] = readFileSync(out, 'utf8');
  }

  function connect(name: string): SpawnedProcess {
    return startClient(topo.name('office'), work, `${name}-${Date.now()}`, profiles[name]!, [
      '--connect-retry',
      '1',
      '1',
    ]);
  }

  async function crlNumberOf(file: string): Promise<number> {
    const text = (await exec(['openssl', 'crl', '-in', file, '-noout', '-text'])).stdout;
    return Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)![1]);
  }

  async function refused(name: string): Promise<void> {
    const before = count(server.output(), /certificate revoked|CRL CHECK FAILED/i);
    const p = connect(name);
    await until(
      () => count(server.output(), /certificate revoked|CRL CHECK FAILED/i) > before,
      20_000,
      `openvpn to refuse ${name}`,
    );
    assert.doesNotMatch(p.output(), /Initialization Sequence Completed/);
    await p.stop();
  }

  async function connects(name: string): Promise<void> {
    const p = connect(name);
    await waitClientConnected(p);
    await p.stop();
  }

  before(async function () {
    if (!(await canUseNetns())) {
      if (process.env.CI === 'true') throw new Error('network namespaces need root + iproute2');
      this.skip();
    }
    topo = await officeNodePod({ prefix: 'pgr' });
    work = mkdtempSync(join(tmpdir(), 'pg-restore-'));
    dirA = join(work, 'a');
    dirB = join(work, 'b');
    writeFileSync(join(work, 'admin.pw'), 'admin-password-for-tests\n', { mode: 0o600 });
    writeFileSync(join(work, 'backup.pass'), 'backup passphrase for the e2e test\n', { mode: 0o600 });
    cfgFile = join(work, 'podgate.yaml');
    writeFileSync(
      cfgFile,
      [
        'ca: { keyType: ec-p384 }',
        'vpn:',
        `  port: ${PORT}`,
        `  endpoints: ["${A.node}"]`,
        `  routes: { pods: ["${A.podCidr}"] }`,
        '',
      ].join('\n'),
    );
    await exec([process.execPath, CLI, '--config', cfgFile, '--data-dir', dirA, 'init'], {
      env: { ...process.env, PODGATE_ADMIN_PASSWORD_FILE: join(work, 'admin.pw') },
    });
    for (const n of ['alice.laptop', 'bob.laptop', 'carol.phone']) await issue(dirA, n);
    await cli(dirA, 'cert', 'revoke', 'carol.phone', '--reason', 'keyCompromise');

    // openvpn runs from A's server files, with A's CRL where its crl-verify reads it (the agent's job)
    const configA = loadConfig({ file: cfgFile, overrides: { dataDir: dirA } });
    const ctx = await openContext(configA);
    try {
      const paths = serverPaths(configA);
      writeServerFiles(configA, paths, await ctx.server.ensure());
      activeCrl = paths.activeCrl;
      writeFileAtomic(activeCrl, ctx.store.getCrl()!.pem, 0o644);
      server = topo.spawn('node', ['openvpn', '--config', paths.config, '--writepid', paths.pidFile], {
        cwd: paths.dir,
        logFile: join(work, 'openvpn-server.log'),
      });
    } finally {
      ctx.close();
    }
    await server.waitFor(/Initialization Sequence Completed/, 30_000);
  });

  after(async () => {
    await cleanupAll();
    if (work) {
      if (activeCrl && dirname(activeCrl).startsWith('/run/podgate/'))
        rmSync(dirname(activeCrl), { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('before: alice connects, carol (revoked) is refused', async () => {
    await connects('alice.laptop');
    await refused('carol.phone');
  });

  it('backup, lose A (database and CA files), restore into B while openvpn keeps running', async () => {
    const file = join(work, 'a.pgbackup');
    await cli(dirA, 'backup', '--out', file, '--passphrase-file', join(work, 'backup.pass'));
    crlNumberInBackup = await crlNumberOf(activeCrl);
    for (const name of readdirSync(dirA))
      if (name !== 'server') rmSync(join(dirA, name), { recursive: true });
    assert.deepEqual(readdirSync(dirA), ['server']);
    assert.ok(server.running, 'openvpn kept running');
    const r = await cli(dirB, 'restore', file, '--passphrase-file', join(work, 'backup.pass'));
    assert.match(r.stdout, /restored \d+ files into/);
  });

  it('after: old profiles connect, the revoked one stays refused; B issues and revokes with the next CRL number', async () => {
    await connects('alice.laptop');
    await connects('bob.laptop');
    await refused('carol.phone');

    await issue(dirB, 'dave.laptop'); // issued after the restore by the restored CA and server key
    await issue(dirB, 'erin.phone');
    await cli(dirB, 'cert', 'revoke', 'erin.phone', '--reason', 'keyCompromise');
    // deliver B's CRL to the running openvpn, as the agent of `server run` would
    const fresh = join(work, 'crl-b.pem');
    await cli(dirB, 'crl', '--out', fresh);
    assert.equal(await crlNumberOf(fresh), crlNumberInBackup + 1, 'the CRL number continues');
    writeFileAtomic(activeCrl, readFileSync(fresh), 0o644);

    await connects('dave.laptop');
    await refused('erin.phone');
    await refused('carol.phone');
    await connects('alice.laptop');
    assert.ok(server.running, 'the same openvpn process served every connection');
  });
});
