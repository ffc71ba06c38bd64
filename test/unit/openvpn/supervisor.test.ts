/**
 * The supervisor with a real context (SQLite file, CA, server identity) and a stand-in for the openvpn
 * binary (a node script that behaves like it on the points the supervisor relies on: --writepid, the
 * "Initialization Sequence Completed" line, dying). The e2e suite runs it with the real openvpn.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../../../src/config/schema.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { openContext, type AppContext } from '../../../src/services/context.js';
import { ServerSupervisor } from '../../../src/openvpn/supervisor.js';

const FAKE_OPENVPN = `
const fs = require('fs');
const i = process.argv.indexOf('--writepid');
fs.writeFileSync(process.argv[i + 1], String(process.pid));
console.log('Initialization Sequence Completed');
setInterval(() => {}, 1000);
process.on('SIGTERM', () => process.exit(0));
`;

describe('openvpn/supervisor (stand-in openvpn)', function () {
  this.timeout(30_000);
  let root: string;
  let ctx: AppContext;
  let sup: ServerSupervisor;
  const argvs: string[][] = [];

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'pg-sup-'));
    const config = configSchema.parse({
      dataDir: join(root, 'data'),
      vpn: { user: '', group: '', endpoints: ['192.0.2.1'] },
    });
    ctx = await openContext(config);
    argvs.length = 0;
    sup = new ServerSupervisor(ctx, {
      spawnProcess: (argv, cwd) => {
        argvs.push([...argv]);
        return spawn(process.execPath, ['-e', FAKE_OPENVPN, '--', ...argv.slice(1)], {
          cwd,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      },
      onOutput: () => undefined,
      restartInitialMs: 50,
      crlCheckEveryMs: 100,
    });
  });
  afterEach(async () => {
    await sup.stop();
    await ctx.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('writes the files, puts the verified CRL in place before openvpn starts, and passes --config/--writepid', async () => {
    const ready = sup.ready();
    await sup.start();
    await ready;
    const p = sup.paths;
    assert.deepEqual(argvs[0], ['openvpn', '--config', p.config, '--writepid', p.pidFile]);
    assert.equal(statSync(p.key).mode & 0o777, 0o600);
    const crl = readFileSync(p.activeCrl, 'utf8');
    assert.equal(verifyCrl(crl, ctx.ca.certPem).number, (await ctx.revocation.currentCrl())!.number);
    assert.ok(existsSync(join(p.dir, 'revocations.json')), 'bundle published for the watcher');
    assert.equal(Number(readFileSync(p.pidFile, 'utf8')), sup.pid);
  });

  it('restarts openvpn when it dies, with backoff', async () => {
    await sup.start();
    await sup.ready();
    for (let round = 0; round < 2; round++) {
      const pid = sup.pid!;
      const next = sup.ready();
      process.kill(pid, 'SIGKILL');
      await next;
      assert.notEqual(sup.pid, pid);
    }
    assert.equal(sup.starts, 3);
  });

  it('a revocation made through the context reaches the active CRL through the local publisher', async () => {
    await sup.start();
    await sup.ready();
    await ctx.users.create({ actor: 'test', name: 'zed', role: 'user', password: 'a-long-password-1' });
    const { cert } = await ctx.devices.issue({ actor: 'test', owner: 'zed', commonName: 'zed.laptop' });
    await ctx.revocation.revoke({ actor: 'test', serialOrName: cert.serial, reason: 'keyCompromise' });
    const deadline = Date.now() + 5000;
    let serials: string[] = [];
    while (Date.now() < deadline) {
      serials = verifyCrl(readFileSync(sup.paths.activeCrl, 'utf8'), ctx.ca.certPem).revokedSerials;
      if (serials.includes(cert.serial)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(serials.includes(cert.serial), 'revoked serial in the CRL openvpn reads');
  });

  it('stop() ends openvpn and does not restart it', async () => {
    await sup.start();
    await sup.ready();
    const pid = sup.pid!;
    await sup.stop();
    await new Promise((r) => setTimeout(r, 200));
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.equal(sup.starts, 1);
  });
});
