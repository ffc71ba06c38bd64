/**
 * Scheduled backups: the scheduler keeps the newest `backup.keep` files and audits every run; the
 * config refuses backup.dir without a passphrase file; a short passphrase file stops `serve` at start
 * (exit 2); and the real `podgate serve` with backup.dir writes a backup that decrypts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load.js';
import { decodeBackup } from '../../../src/services/backup-format.js';
import { BackupScheduler } from '../../../src/services/backup-schedule.js';
import { runCli } from '../../helpers/cli.js';
import { startServe } from '../../helpers/serve.js';
import { testContext } from '../../helpers/context.js';

const PASS = 'scheduled backup passphrase';

describe('scheduled backups', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-bk-sched-'));
    writeFileSync(join(dir, 'pass'), `${PASS}\n`);
    writeFileSync(join(dir, 'short'), 'short\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the newest `keep` backups, 0600, and audits each run', async () => {
    const backups = join(dir, 'backups');
    const ctx = await testContext(dir, {
      'backup.dir': backups,
      'backup.keep': 2,
      'backup.passphraseFile': join(dir, 'pass'),
    });
    try {
      let t = Date.parse('2026-11-30T10:00:00Z');
      const s = new BackupScheduler({
        config: ctx.config,
        audit: ctx.store,
        now: () => new Date((t += 60_000)),
      });
      const written: string[] = [];
      for (let i = 0; i < 3; i++) written.push((await s.runOnce())!);
      assert.deepEqual(
        readdirSync(backups),
        written.slice(1).map((f) => f.slice(backups.length + 1)),
      );
      assert.deepEqual(readdirSync(backups), [
        'podgate-20261130T100200Z.pgbackup',
        'podgate-20261130T100300Z.pgbackup',
      ]);
      for (const f of written.slice(1)) {
        assert.equal(statSync(f).mode & 0o777, 0o600);
        assert.ok(decodeBackup(readFileSync(f), PASS).entries.some((e) => e.path === 'podgate.db'));
      }
      const audit = await ctx.store.listAudit({ action: 'backup.scheduled' });
      assert.equal(audit.length, 3);
      assert.ok(audit.every((a) => a.result === 'ok'));
    } finally {
      await ctx.close();
    }
  });

  it("intervalHours above 596 h (past setTimeout's 2^31-1 ms): the next backup waits, no back-to-back runs", async () => {
    const backups = join(dir, 'long-interval');
    const ctx = await testContext(join(dir, 'long'), {
      'ca.keyType': 'ec-p384',
      'backup.dir': backups,
      'backup.intervalHours': 700,
      'backup.passphraseFile': join(dir, 'pass'),
    });
    const s = new BackupScheduler({ config: ctx.config, audit: ctx.store, now: () => new Date() });
    try {
      await s.runOnce(); // a fresh backup: the next one is due in 700 h
      s.start();
      // Node clamps a delay past 2^31-1 ms to 1 ms: the old scheduler wrote a backup every few ms here.
      await new Promise((r) => setTimeout(r, 400));
      await s.stop();
      assert.equal(readdirSync(backups).length, 1, 'one backup, the next one 700 h away');
      assert.equal((await ctx.store.listAudit({ action: 'backup.scheduled' })).length, 1);
    } finally {
      await s.stop();
      await ctx.close();
    }
  });

  it('config: backup.dir without backup.passphraseFile is refused, naming the key', () => {
    assert.throws(
      () => loadConfig({ env: {}, overrides: { 'backup.dir': '/tmp/x' } }),
      (e: Error) =>
        /backup\.passphraseFile/.test(e.message) && /required when backup\.dir is set/.test(e.message),
    );
  });

  it('serve: exit 2 with a short passphrase file; with a good one it writes a backup at start', async () => {
    const env = {
      PODGATE_BACKUP_DIR: join(dir, 'served'),
      KUBECONFIG: '',
      KUBERNETES_SERVICE_HOST: '',
    };
    const bad = await runCli(['serve', '--data-dir', join(dir, 'd1'), '--port', '0'], {
      ...env,
      PODGATE_BACKUP_PASSPHRASE_FILE: join(dir, 'short'),
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /backup\.passphraseFile must hold at least 12 characters/);

    const served = await startServe({
      dataDir: join(dir, 'd2'),
      env: { ...env, PODGATE_BACKUP_PASSPHRASE_FILE: join(dir, 'pass') },
    });
    try {
      const end = Date.now() + 30_000;
      let files: string[] = [];
      while (Date.now() < end && files.length === 0) {
        await new Promise((r) => setTimeout(r, 200));
        try {
          files = readdirSync(join(dir, 'served')).filter((n) => n.endsWith('.pgbackup'));
        } catch {
          /* not made yet */
        }
      }
      assert.equal(files.length, 1, 'serve wrote one backup at start');
      const decoded = decodeBackup(readFileSync(join(dir, 'served', files[0]!)), PASS);
      assert.ok(decoded.info.certificates >= 0);
    } finally {
      await served.stop();
    }
  });
});
