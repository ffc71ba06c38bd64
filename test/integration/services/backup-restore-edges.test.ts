/**
 * Backup and restore edge cases (issue 21, items 8–13), on real SQLite files and CA files:
 * - an overlap-era backup (two CAs trusted) restored with --crl-number-above gets one CRL per CA
 *   (the agent's own check accepts the pair) with the expiry cut-off applied;
 * - restore checks the CA key with the secret the runtime will use (ca.passphraseFile first);
 * - restore into an empty directory it cannot replace (a mount point: its parent is not writable);
 * - backup.dir equal to the data dir or a parent is refused, and a backup without the CA files fails;
 * - a backup or restore SIGKILLed mid-way leaves no scratch copy in the system temp dir, only a private
 *   dir inside the data dir that the next start removes;
 * - a backup taken while `ca rotate` runs in another process holds a CA it can restore.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import { AppError } from '../../../src/lib/errors.js';
import { exec } from '../../../src/lib/exec.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { createBackup, restoreBackup } from '../../../src/services/backup.js';
import { rotateCa } from '../../../src/services/ca-rotation.js';
import { openStore } from '../../../src/store/index.js';
import { CLI, tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

const PASS = 'edge case backup passphrase';
const WORKER_PASS = 'crash worker backup passphrase';
const BACKUP_WORKER = fileURLToPath(new URL('../../helpers/backup-crash-worker.js', import.meta.url));
const CA_WORKER = fileURLToPath(new URL('../../helpers/ca-crash-worker.js', import.meta.url));
const EC = { 'ca.keyType': 'ec-p384' };
const crlBlocks = (pem: string) =>
  pem.match(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----\n?/g) ?? [];
const config = (dataDir: string, extra: Record<string, unknown> = {}) =>
  loadConfig({ env: {}, overrides: { dataDir, ...extra } });

function runNode(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, out })));
}

describe('backup and restore: edge cases', function () {
  this.timeout(120_000);

  it('an overlap-era backup restored with crlNumberAbove gets one CRL per trusted CA, expired entries cut', async () => {
    const t = tempDir();
    try {
      let ctx = await testContext(t.dir, EC);
      await ctx.users.create({ actor: 't', name: 'olga', role: 'user' });
      const oldDev = await ctx.devices.issue({ actor: 't', owner: 'olga', commonName: 'olga-old' });
      // a revoked certificate that expired long ago: the normal rebuild leaves it out of the CRL
      const long = new Date(Date.now() - 400 * 86_400_000);
      await ctx.store.insertCert({
        serial: '7A11EE',
        commonName: 'olga-expired',
        ownerId: null,
        deviceName: 'expired',
        kind: 'client',
        keyType: 'ec-p256',
        notBefore: long,
        notAfter: new Date(long.getTime() + 30 * 86_400_000),
        certPem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
      });
      await ctx.store.markRevoked('7A11EE', 'superseded', long);
      await rotateCa(ctx, { actor: 't' });
      await ctx.close();
      ctx = await testContext(t.dir, EC);
      const newDev = await ctx.devices.issue({ actor: 't', owner: 'olga', commonName: 'olga-new' });
      await ctx.revocation.revoke({ actor: 't', serialOrName: oldDev.cert.serial, reason: 'keyCompromise' });
      await ctx.revocation.revoke({ actor: 't', serialOrName: newDev.cert.serial, reason: 'keyCompromise' });
      const caBundle = ctx.ca.certPem + ctx.previousCa!.certPem;
      await ctx.close();

      const made = await createBackup({ dataDir: join(t.dir, 'data'), passphrase: PASS });
      const target = join(t.dir, 'restored');
      const r = await restoreBackup({
        file: made.data,
        passphrase: PASS,
        dataDir: target,
        config: config(target, EC),
        actor: 't',
        crlNumberAbove: 50,
      });
      assert.equal(r.crlNumber, 51);
      const store = openStore(target);
      const pem = (await store.getCrl())!.pem;
      await store.close();
      assert.equal(crlBlocks(pem).length, 2, 'one CRL per trusted CA');
      const info = verifyCrl(pem, caBundle); // what the agent and `server run`'s prime check
      assert.equal(info.number, 51);
      const serials = info.revokedSerials.map((s) => s.toUpperCase().replace(/^0+/, ''));
      for (const s of [oldDev.cert.serial, newDev.cert.serial])
        assert.ok(serials.includes(s.toUpperCase().replace(/^0+/, '')), `${s} listed`);
      assert.ok(!serials.includes('7A11EE'), 'the long-expired certificate is cut');
    } finally {
      t.cleanup();
    }
  });

  it('400 naming ca.passphraseFile: a key-file backup restored where ca.passphraseFile is set', async () => {
    const t = tempDir();
    try {
      const ctx = await testContext(t.dir, EC); // no passphrase: the CA key is under ca-key.kek
      await ctx.close();
      const made = await createBackup({ dataDir: join(t.dir, 'data'), passphrase: PASS });
      const passFile = join(t.dir, 'ca.pass');
      writeFileSync(passFile, 'a CA passphrase of its own\n');
      const target = join(t.dir, 'restored');
      await assert.rejects(
        () =>
          restoreBackup({
            file: made.data,
            passphrase: PASS,
            dataDir: target,
            config: config(target, { ...EC, 'ca.passphraseFile': passFile }),
            actor: 't',
          }),
        (err: unknown) => err instanceof AppError && err.status === 400 && err.field === 'ca.passphraseFile',
      );
      assert.ok(!existsSync(target), 'nothing written');
      // without the passphrase setting the same backup restores, and every command can open it
      await restoreBackup({
        file: made.data,
        passphrase: PASS,
        dataDir: target,
        config: config(target, EC),
        actor: 't',
      });
      await (await testContext(join(target, '..'), { ...EC, dataDir: target })).close();
    } finally {
      t.cleanup();
    }
  });

  it('a passphrase-protected backup restores with ca.passphraseFile and opens afterwards', async () => {
    const t = tempDir();
    try {
      const passFile = join(t.dir, 'ca.pass');
      writeFileSync(passFile, 'the CA passphrase\n');
      const ctx = await testContext(t.dir, { ...EC, 'ca.passphraseFile': passFile });
      await ctx.close();
      const made = await createBackup({ dataDir: join(t.dir, 'data'), passphrase: PASS });
      const target = join(t.dir, 'restored');
      await restoreBackup({
        file: made.data,
        passphrase: PASS,
        dataDir: target,
        config: config(target, { ...EC, 'ca.passphraseFile': passFile }),
        actor: 't',
      });
      await (await testContext(t.dir, { ...EC, dataDir: target, 'ca.passphraseFile': passFile })).close();
    } finally {
      t.cleanup();
    }
  });

  it('restores into an empty mount-point-like dir whose parent the process cannot write (as nobody)', async function () {
    if (process.getuid?.() !== 0) {
      if (process.env.CI === 'true') throw new Error('this test needs root (runuser -u nobody)');
      this.skip();
    }
    const t = tempDir();
    try {
      await (await testContext(t.dir, EC)).close();
      const made = await createBackup({ dataDir: join(t.dir, 'data'), passphrase: PASS });
      chmodSync(t.dir, 0o755);
      const file = join(t.dir, 'b.pgbackup');
      const pass = join(t.dir, 'b.pass');
      writeFileSync(file, made.data, { mode: 0o644 });
      writeFileSync(pass, PASS + '\n', { mode: 0o644 });
      const volume = join(t.dir, 'volume'); // like the image's /data: root-owned parent
      const target = join(volume, 'data');
      mkdirSync(target, { recursive: true, mode: 0o755 });
      chmodSync(volume, 0o755);
      chownSync(target, 65534, 65534);
      chmodSync(target, 0o700);
      const r = await exec(
        [
          'runuser',
          '-u',
          'nobody',
          '--',
          process.execPath,
          CLI,
          '--data-dir',
          target,
          'restore',
          file,
          '--passphrase-file',
          pass,
        ],
        { check: false },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(join(target, 'podgate.db')) && existsSync(join(target, 'ca.key.enc')));
      assert.deepEqual(readdirSync(volume), ['data'], 'nothing written beside the target');
      assert.equal(statSync(target).uid, 65534, 'the directory itself was kept');
      const list = await exec(
        ['runuser', '-u', 'nobody', '--', process.execPath, CLI, '--data-dir', target, 'cert', 'list'],
        { check: false },
      );
      assert.equal(list.code, 0, list.stderr);
    } finally {
      t.cleanup();
    }
  });

  it('config: backup.dir equal to the data dir or a parent is refused naming backup.dir', () => {
    for (const dir of ['/srv/podgate/data', '/srv/podgate', '/srv', '/']) {
      assert.throws(
        () => config('/srv/podgate/data', { 'backup.dir': dir, 'backup.passphraseFile': '/etc/p' }),
        (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('backup.dir:')),
        dir,
      );
    }
    for (const dir of ['/srv/podgate-backups', '/srv/podgate/data/backups', '/backup'])
      config('/srv/podgate/data', { 'backup.dir': dir, 'backup.passphraseFile': '/etc/p' });
  });

  it('createBackup fails when the CA files would be left out (an exclude covering the data dir)', async () => {
    const t = tempDir();
    try {
      await (await testContext(t.dir, EC)).close();
      await assert.rejects(
        createBackup({ dataDir: join(t.dir, 'data'), passphrase: PASS, exclude: [t.dir] }),
        (err: unknown) => err instanceof AppError && err.code === 'backup_incomplete',
      );
    } finally {
      t.cleanup();
    }
  });

  for (const [action, point] of [
    ['backup', 'backup:copied'],
    ['restore', 'restore:staged'],
  ] as const) {
    it(`${action} SIGKILLed at ${point}: no scratch in the temp dir; the private one goes at the next start`, async () => {
      const t = tempDir();
      try {
        await (await testContext(t.dir, EC)).close();
        const src = join(t.dir, 'data');
        let dataDir = src;
        const args = [BACKUP_WORKER, action, src, point];
        if (action === 'restore') {
          const file = join(t.dir, 'b.pgbackup');
          writeFileSync(file, (await createBackup({ dataDir: src, passphrase: WORKER_PASS })).data);
          dataDir = join(t.dir, 'restored');
          args.splice(2, 1, dataDir);
          args.push(file);
        }
        // the worker's system temp dir is one of its own, so that other processes' files do not count
        const tmp = join(t.dir, 'tmp');
        mkdirSync(tmp);
        const r = await runNode(args, { ...process.env, TMPDIR: tmp });
        assert.equal(r.signal, 'SIGKILL', `the worker reached ${point}: ${r.out}`);
        assert.deepEqual(readdirSync(tmp), [], 'no scratch copy in the system temp dir');
        const scratch = readdirSync(dataDir).filter((n) => /^\.(backup|restore)-/.test(n));
        assert.equal(
          scratch.length,
          1,
          `one private scratch dir in the data dir: ${readdirSync(dataDir).join(' ')}`,
        );
        assert.equal(statSync(join(dataDir, scratch[0]!)).mode & 0o077, 0, 'readable by its owner only');
        if (action === 'restore') {
          // the retried restore removes the dead one's scratch and fills the dir
          const file = args[args.length - 1]!;
          await restoreBackup({
            file: readFileSync(file),
            passphrase: WORKER_PASS,
            dataDir,
            config: config(dataDir),
            actor: 't',
          });
          assert.deepEqual(
            readdirSync(dataDir).filter((n) => n.startsWith('.')),
            [],
          );
        }
        await (await testContext(t.dir, { ...EC, dataDir })).close();
        assert.deepEqual(
          readdirSync(dataDir).filter((n) => /^\.(backup|restore)-/.test(n)),
          [],
          'the next start removed it',
        );
      } finally {
        t.cleanup();
      }
    });
  }

  it('a backup taken while ca rotate runs in another process restores with the CA its rows name', async () => {
    const t = tempDir();
    try {
      await (await testContext(t.dir, EC)).close();
      const rot = spawn(process.execPath, [CA_WORKER, t.dir, 'rotate', 'rotate:key-to-previous', 'pause'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let rotOut = '';
      const rotExit = new Promise((r) => rot.once('exit', r));
      await new Promise<void>((resolve, reject) => {
        rot.stdout.on('data', (d: Buffer) => {
          rotOut += d.toString();
          if (rotOut.includes('paused')) resolve();
        });
        rot.once('exit', () => reject(new Error(`rotation worker exited: ${rotOut}`)));
      });
      const file = join(t.dir, 'during.pgbackup');
      const pass = join(t.dir, 'b.pass');
      writeFileSync(pass, PASS + '\n');
      const backup = runNode([
        CLI,
        '--data-dir',
        join(t.dir, 'data'),
        'backup',
        '--out',
        file,
        '--passphrase-file',
        pass,
      ]);
      // Without the lock the backup runs to its end while the rotation is paused half-way; with it, it
      // waits: let the rotation go on after the backup ended or a few seconds, whichever comes first.
      await Promise.race([backup, new Promise((r) => setTimeout(r, 4000))]);
      rot.stdin.write('\n');
      await rotExit;
      const b = await backup;
      assert.equal(b.code, 0, b.out);
      const target = join(t.dir, 'restored');
      await restoreBackup({
        file: readFileSync(file),
        passphrase: PASS,
        dataDir: target,
        config: config(target, EC),
        actor: 't',
      });
      await (await testContext(t.dir, { ...EC, dataDir: target })).close();
    } finally {
      t.cleanup();
    }
  });
});
