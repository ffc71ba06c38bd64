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
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../src/lib/exec.js';
import { writeFileAtomic } from '../../src/lib/fs-atomic.js';
import { serverPaths, writeServerFiles } from '../../src/openvpn/server-files.js';
import { openContext } from '../../src/services/context.js';
import { requireNetns, VpnLab } from '../helpers/topology.js';

describe('e2e: restore onto a fresh data dir while openvpn keeps running (openvpn 2.6 in namespaces)', function () {
  this.timeout(180_000);
  let lab: VpnLab;
  let work: string;
  let dirA: string;
  let dirB: string;
  let activeCrl: string;
  let crlNumberInBackup: number;

  const cli = (dataDir: string, ...args: string[]) => lab.cli('--data-dir', dataDir, ...args);

  async function crlNumberOf(file: string): Promise<number> {
    const text = (await exec(['openssl', 'crl', '-in', file, '-noout', '-text'])).stdout;
    return Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)![1]);
  }

  before(async function () {
    await requireNetns(this);
    lab = await VpnLab.create({ prefix: 'pgr', port: 30030 });
    work = lab.work;
    dirA = join(work, 'a');
    dirB = join(work, 'b');
    writeFileSync(join(work, 'backup.pass'), 'backup passphrase for the e2e test\n', { mode: 0o600 });
    await lab.init(dirA);
    for (const n of ['alice.laptop', 'bob.laptop', 'carol.phone']) await lab.issue(n, dirA);
    await cli(dirA, 'cert', 'revoke', 'carol.phone', '--reason', 'keyCompromise');

    // openvpn runs from A's server files, with A's CRL where its crl-verify reads it (the agent's job)
    const configA = lab.config(dirA);
    const ctx = await openContext(configA);
    try {
      const paths = serverPaths(configA);
      writeServerFiles(configA, paths, await ctx.server.ensure());
      activeCrl = paths.activeCrl;
      writeFileAtomic(activeCrl, (await ctx.store.getCrl())!.pem, 0o644);
      lab.server = lab.topo.spawn(
        'node',
        ['openvpn', '--config', paths.config, '--writepid', paths.pidFile],
        {
          cwd: paths.dir,
          logFile: join(work, 'openvpn-server.log'),
        },
      );
    } finally {
      await ctx.close();
    }
    await lab.server!.waitFor(/Initialization Sequence Completed/, 30_000);
  });

  after(async () => {
    await lab?.close();
  });

  it('before: alice connects, carol (revoked) is refused', async () => {
    await lab.connects('alice.laptop');
    await lab.refused('carol.phone');
  });

  it('backup, lose A (database and CA files), restore into B while openvpn keeps running', async () => {
    const file = join(work, 'a.pgbackup');
    await cli(dirA, 'backup', '--out', file, '--passphrase-file', join(work, 'backup.pass'));
    crlNumberInBackup = await crlNumberOf(activeCrl);
    for (const name of readdirSync(dirA))
      if (name !== 'server') rmSync(join(dirA, name), { recursive: true });
    assert.deepEqual(readdirSync(dirA), ['server']);
    assert.ok(lab.server!.running, 'openvpn kept running');
    const r = await cli(dirB, 'restore', file, '--passphrase-file', join(work, 'backup.pass'));
    assert.match(r.stdout, /restored \d+ files into/);
  });

  it('after: old profiles connect, the revoked one stays refused; B issues and revokes with the next CRL number', async () => {
    await lab.connects('alice.laptop');
    await lab.connects('bob.laptop');
    await lab.refused('carol.phone');

    await lab.issue('dave.laptop', dirB); // issued after the restore by the restored CA and server key
    await lab.issue('erin.phone', dirB);
    await cli(dirB, 'cert', 'revoke', 'erin.phone', '--reason', 'keyCompromise');
    // deliver B's CRL to the running openvpn, as the agent of `server run` would
    const fresh = join(work, 'crl-b.pem');
    await cli(dirB, 'crl', '--out', fresh);
    assert.equal(await crlNumberOf(fresh), crlNumberInBackup + 1, 'the CRL number continues');
    writeFileAtomic(activeCrl, readFileSync(fresh), 0o644);

    await lab.connects('dave.laptop');
    await lab.refused('erin.phone');
    await lab.refused('carol.phone');
    await lab.connects('alice.laptop');
    assert.ok(lab.server!.running, 'the same openvpn process served every connection');
  });
});
