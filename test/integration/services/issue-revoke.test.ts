import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { exec } from '../../../src/lib/exec.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';
import type { RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';

describe('services: concurrent issues, revocation and crash safety', function () {
  this.timeout(180_000);

  it('50 concurrent issues in one process: 50 distinct serials, 50 rows, a valid CRL afterwards', async () => {
    const t = tempDir();
    const ctx = await testContext(t.dir);
    try {
      await ctx.users.create({ actor: 'test', name: 'alice', role: 'user', password: 'a long password' });
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: `alice-dev${i}` }),
        ),
      );
      const serials = new Set(results.map((r) => r.cert.serial));
      assert.equal(serials.size, 50);
      const rows = await ctx.store.listCerts({ kind: 'client', limit: 1000 });
      assert.equal(rows.total, 50);
      await ctx.revocation.revoke({ actor: 'test', serialOrName: 'alice-dev7', reason: 'keyCompromise' });
      const crl = (await ctx.revocation.currentCrl())!;
      const info = verifyCrl(crl!.pem, ctx.ca.certPem);
      assert.deepEqual(info.revokedSerials, [results[7]!.cert.serial]);
      const crlFile = join(t.dir, 'crl.pem');
      const caFile = join(t.dir, 'ca.pem');
      writeFileSync(crlFile, crl!.pem);
      writeFileSync(caFile, ctx.ca.certPem);
      const v = await exec(['openssl', 'crl', '-in', crlFile, '-CAfile', caFile, '-verify', '-noout'], {
        check: false,
      });
      assert.match(v.stdout + v.stderr, /verify OK/);
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });

  it('a failed issue (duplicate name) leaves no row and no audit entry', async () => {
    const t = tempDir();
    const ctx = await testContext(t.dir);
    try {
      await ctx.users.create({ actor: 'test', name: 'bob', role: 'user' });
      await ctx.devices.issue({ actor: 'test', owner: 'bob', commonName: 'bob-phone' });
      const auditBefore = (await ctx.store.listAudit({ limit: 1000 })).length;
      const certsBefore = (await ctx.store.listCerts({})).total;
      await assert.rejects(
        ctx.devices.issue({ actor: 'test', owner: 'bob', commonName: 'bob-phone' }),
        /already has a valid certificate/,
      );
      await assert.rejects(
        ctx.devices.issue({ actor: 'test', owner: 'bob', commonName: 'bob-x', keyType: 'dsa' }),
        /keyType must be one of/,
      );
      await assert.rejects(
        ctx.devices.issue({ actor: 'test', owner: 'bob', commonName: 'bob-csr', csrPem: 'not a csr' }),
        (err: Error & { field?: string }) => /csr/i.test(err.message),
      );
      assert.equal((await ctx.store.listAudit({ limit: 1000 })).length, auditBefore);
      assert.equal((await ctx.store.listCerts({})).total, certsBefore);
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });

  it('disabling a user revokes all their certificates with one CRL; the bundle names them', async () => {
    const t = tempDir();
    const published: RevocationBundle[] = [];
    const ctx = await testContext(
      t.dir,
      {},
      { publishers: [{ name: 'memory', publish: async (b) => void published.push(b) }] },
    );
    try {
      await ctx.users.create({ actor: 'test', name: 'carol', role: 'user' });
      const a = await ctx.devices.issue({ actor: 'test', owner: 'carol', commonName: 'carol-a' });
      const b = await ctx.devices.issue({ actor: 'test', owner: 'carol', commonName: 'carol-b' });
      const before = (await ctx.revocation.currentCrl())!.number;
      const { revoked } = await ctx.users.disable({ actor: 'admin', name: 'carol' });
      assert.deepEqual(revoked.sort(), [a.cert.serial, b.cert.serial].sort());
      const crl = (await ctx.revocation.currentCrl())!;
      assert.equal(crl!.number, before + 1);
      assert.deepEqual(verifyCrl(crl!.pem, ctx.ca.certPem).revokedSerials.sort(), revoked.sort());
      const last = published.at(-1)!;
      assert.equal(last.crlNumber, crl!.number);
      assert.deepEqual(last.revoked.map((r) => r.commonName).sort(), ['carol-a', 'carol-b']);
      assert.deepEqual(last.reissuedCommonNames, []);
      await assert.rejects(
        ctx.devices.issue({ actor: 'test', owner: 'carol', commonName: 'carol-c' }),
        /disabled/,
      );
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });

  it('SIGKILL in the middle of issues and revocations leaves a store whose CRL matches its revoked rows', async () => {
    const t = tempDir();
    const worker = fileURLToPath(new URL('../../helpers/service-crash-worker.js', import.meta.url));
    const child = spawn(process.execPath, [worker, t.dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let acknowledged = 0;
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        acknowledged += (b.toString().match(/ok\n/g) ?? []).length;
        if (acknowledged >= 40 && !child.killed) {
          child.kill('SIGKILL');
        }
      });
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    assert.ok(acknowledged >= 40, `worker acknowledged ${acknowledged} operations`);
    const db = new Database(join(t.dir, 'data', 'podgate.db'));
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
    const ctx = await testContext(t.dir);
    try {
      const revokedRows = (await ctx.store.listRevoked()).map((r) => r.serial).sort();
      assert.ok(revokedRows.length > 0);
      const crl = (await ctx.revocation.currentCrl())!;
      assert.deepEqual(verifyCrl(crl!.pem, ctx.ca.certPem).revokedSerials.sort(), revokedRows);
      const certs = await ctx.store.listCerts({ kind: 'client', limit: 100000 });
      assert.ok(certs.total >= Math.floor(acknowledged / 2));
      assert.ok(certs.items.every((c) => (c.status === 'revoked') === (c.revokedAt !== null)));
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });
});

describe('services: disabling a user is one step (issue 21, item 17)', function () {
  this.timeout(60_000);

  it('a process killed where "disabled" used to commit before "revoked" leaves no disabled user holding valid certificates', async () => {
    const t = tempDir();
    try {
      const worker = fileURLToPath(new URL('../../helpers/disable-crash-worker.js', import.meta.url));
      const child = spawn(process.execPath, [worker, t.dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const signal = await new Promise<NodeJS.Signals | null>((resolve, reject) => {
        child.on('exit', (_code, sig) => resolve(sig));
        child.on('error', reject);
      });
      assert.equal(signal, 'SIGKILL', out);
      assert.match(out, /issued/);
      const ctx = await testContext(t.dir);
      try {
        const erin = (await ctx.store.getUserByName('erin'))!;
        const valid = (await ctx.store.listCerts({ ownerId: erin!.id, status: 'valid' })).total;
        // Either the whole disable happened or none of it: never a disabled user with valid certificates.
        assert.ok(
          !erin!.disabled || valid === 0,
          `disabled=${erin!.disabled} with ${valid} valid certificates`,
        );
        assert.equal(erin!.disabled, false, 'the killed disable rolled back');
        assert.equal(valid, 3);
        // Run again, to completion: disabled and revoked, and the CRL lists all three.
        const { revoked } = await ctx.users.disable({ actor: 'test', name: 'erin' });
        assert.equal(revoked.length, 3);
        assert.equal((await ctx.store.listCerts({ ownerId: erin!.id, status: 'valid' })).total, 0);
        const crl = verifyCrl((await ctx.revocation.currentCrl())!.pem, ctx.ca.certPem).revokedSerials;
        assert.ok(revoked.every((s) => crl.includes(s)));
      } finally {
        await ctx.close();
      }
    } finally {
      t.cleanup();
    }
  });

  it('the start-up sweep revokes what a disabled user still holds (a store left by an older version)', async () => {
    const t = tempDir();
    const ctx = await testContext(t.dir);
    try {
      const fay = await ctx.users.create({ actor: 'test', name: 'fay', role: 'user' });
      const { cert } = await ctx.devices.issue({ actor: 'test', owner: 'fay', commonName: 'fay.laptop' });
      // What the old two-step disable left after a crash: disabled, certificate still valid.
      await ctx.store.updateUser(fay.id, { disabled: true });
      const swept = await ctx.users.revokeHeldByDisabled('system');
      assert.deepEqual(swept, [cert.serial]);
      assert.equal((await ctx.store.getCert(cert.serial))!.status, 'revoked');
      assert.equal((await ctx.store.getCert(cert.serial))!.revocationReason, 'affiliationChanged');
      assert.ok(
        verifyCrl((await ctx.revocation.currentCrl())!.pem, ctx.ca.certPem).revokedSerials.includes(
          cert.serial,
        ),
      );
      assert.deepEqual(await ctx.users.revokeHeldByDisabled('system'), [], 'nothing left the second time');
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });
});

describe('services: server identity across processes', function () {
  this.timeout(60_000);

  it('two contexts on one data dir (two processes) end with one server certificate', async () => {
    const t = tempDir();
    const a = await testContext(t.dir);
    const b = await testContext(t.dir);
    try {
      const [x, y] = await Promise.all([a.server.ensure(), b.server.ensure()]);
      assert.equal(x.serial, y.serial);
      assert.equal(x.tlsCryptV2ServerKeyPem, y.tlsCryptV2ServerKeyPem);
      const servers = await a.store.listCerts({ kind: 'server' });
      assert.equal(servers.total, 1);
      assert.equal(servers.items[0]!.serial, x.serial);
    } finally {
      await a.close();
      await b.close();
      t.cleanup();
    }
  });
});
