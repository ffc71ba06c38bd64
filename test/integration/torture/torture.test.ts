/**
 * Crash safety at scale: SIGKILL at random points while `serve`-like writers (test/helpers/torture-worker.ts,
 * the real services on a real data dir) and real CLI processes (`cert issue`, `cert revoke`, `backup`)
 * issue, revoke, publish CRLs and write backups, often two at once. After every kill:
 *   - the database passes integrity_check and foreign_key_check;
 *   - every profile that reached a client (acknowledged issue, or a finished `--out` file) has its row;
 *   - every acknowledged revocation is revoked in the store, in the stored CRL and in the published CRL;
 *   - the stored CRL verifies against the CA and lists exactly the revoked rows;
 *   - the published CRL verifies, lists only revoked rows, and after a restart's republish equals them;
 *   - every backup file that exists under its final name decrypts, passes integrity_check, and its
 *     CRL equals its own revoked rows.
 * The default suite runs PODGATE_TORTURE_KILLS=20; `npm run torture` runs 1,000 and prints the tally.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { LocalCrlPublisher, serverDir } from '../../../src/openvpn/local-publisher.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { decodeBackup } from '../../../src/services/backup-format.js';
import { inspectDatabase } from '../../../src/store/backup.js';
import { CLI, profileBlock } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';
import { normSerial as norm, rng, startTortureProcess } from '../../helpers/torture-process.js';

const WORKER = fileURLToPath(new URL('../../helpers/torture-worker.js', import.meta.url));
const KILLS = Number(process.env.PODGATE_TORTURE_KILLS ?? 20);
const BACKUP_PASS = 'torture passphrase';
/** serve-like writers killed per round. */
const WORKERS = 2;

interface Tally {
  kills: number;
  workerKills: number;
  cliKills: number;
  issued: Set<string>;
  revoked: Set<string>;
  published: number;
  backups: number;
  backupsChecked: number;
  tempFilesLeft: number;
  lost: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`torture: ${KILLS} SIGKILLs during issue, revoke, backup and CRL publish`, function () {
  this.timeout(KILLS * 20_000 + 120_000);
  let dir: string;
  let dataDir: string;
  let caPem: string;
  const live: ChildProcess[] = [];
  const checkedBackups = new Set<string>();
  const seenTemp = new Set<string>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-torture-'));
    dataDir = join(dir, 'data');
    const ctx = await testContext(dir);
    await ctx.users.create({ actor: 'torture', name: 'tess', role: 'user' });
    await ctx.server.ensure();
    caPem = ctx.ca.certPem;
    await ctx.close();
    writeFileSync(join(dir, 'backup.pass'), `${BACKUP_PASS}\n`);
  });
  after(() => {
    for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (dir && !process.env.PODGATE_TORTURE_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  /** Rows of the store: every serial, and the revoked ones. */
  function readStore(): { all: Set<string>; revoked: Set<string>; crlPem: string } {
    const db = new Database(join(dataDir, 'podgate.db'));
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'integrity_check');
      assert.deepEqual(db.pragma('foreign_key_check'), [], 'foreign_key_check');
      const rows = db.prepare('SELECT serial, status FROM certificates').all() as {
        serial: string;
        status: string;
      }[];
      const crlPem = db.prepare('SELECT pem FROM crl_state WHERE id = 1').pluck().get() as string;
      return {
        all: new Set(rows.map((r) => norm(r.serial))),
        revoked: new Set(rows.filter((r) => r.status === 'revoked').map((r) => norm(r.serial))),
        crlPem,
      };
    } finally {
      db.close();
    }
  }

  function check(t: Tally, round: number): void {
    const where = `after kill ${round}`;
    const before = t.lost.length;
    try {
      checkNow(t, where);
    } finally {
      // shown as they happen: a long run that is stopped early still tells what was lost
      for (const l of t.lost.slice(before)) console.log(`      LOST ${l}`);
    }
  }

  function checkNow(t: Tally, where: string): void {
    const store = readStore();
    for (const s of t.issued) if (!store.all.has(s)) t.lost.push(`${where}: issued ${s} has no row`);
    for (const s of t.revoked)
      if (!store.revoked.has(s)) t.lost.push(`${where}: revoked ${s} not revoked in the store`);
    const stored = new Set(verifyCrl(store.crlPem, caPem).revokedSerials.map(norm));
    assert.deepEqual(
      [...stored].sort(),
      [...store.revoked].sort(),
      `${where}: stored CRL equals the revoked rows`,
    );

    const publishedFile = join(serverDir(dataDir), 'crl.pem');
    if (existsSync(publishedFile)) {
      const published = new Set(
        verifyCrl(readFileSync(publishedFile, 'utf8'), caPem).revokedSerials.map(norm),
      );
      for (const s of published)
        assert.ok(store.revoked.has(s), `${where}: published CRL names ${s}, not revoked in the store`);
      for (const s of t.revoked)
        if (!published.has(s))
          t.lost.push(`${where}: acknowledged revocation ${s} missing from the published CRL`);
    }

    const backups = join(dir, 'backups');
    for (const name of existsSync(backups) ? readdirSync(backups) : []) {
      if (name.startsWith('.')) {
        t.tempFilesLeft++;
        rmSync(join(backups, name), { force: true });
        continue;
      }
      if (checkedBackups.has(name)) continue;
      checkedBackups.add(name);
      const decoded = decodeBackup(readFileSync(join(backups, name)), BACKUP_PASS);
      const dbEntry = decoded.entries.find((e) => e.path === 'podgate.db')!;
      const copy = join(dir, 'check.db');
      writeFileSync(copy, dbEntry.data);
      inspectDatabase(copy);
      const db = new Database(copy, { readonly: true });
      try {
        const revokedRows = (
          db.prepare("SELECT serial FROM certificates WHERE status = 'revoked'").pluck().all() as string[]
        ).map(norm);
        const pem = db.prepare('SELECT pem FROM crl_state WHERE id = 1').pluck().get() as string;
        const inCrl = verifyCrl(pem, caPem).revokedSerials.map(norm);
        assert.deepEqual(
          inCrl.sort(),
          revokedRows.sort(),
          `${where}: backup ${name} CRL equals its revoked rows`,
        );
      } finally {
        db.close();
        rmSync(copy, { force: true });
      }
      t.backupsChecked++;
    }
    // temp files of atomic writes cut short by a kill: harmless, counted once each
    for (const name of readdirSync(serverDir(dataDir)))
      if (name.endsWith('.tmp') && !seenTemp.has(name)) {
        seenTemp.add(name);
        t.tempFilesLeft++;
      }
  }

  /** What `serve` and `server run` do at start: publish the current bundle; then it must equal the rows. */
  async function restartRepublishes(): Promise<void> {
    const ctx = await testContext(dir, {}, { publishers: [new LocalCrlPublisher(serverDir(dataDir))] });
    try {
      await ctx.revocation.publish();
    } finally {
      await ctx.close();
    }
    const store = readStore();
    const published = verifyCrl(
      readFileSync(join(serverDir(dataDir), 'crl.pem'), 'utf8'),
      caPem,
    ).revokedSerials.map(norm);
    assert.deepEqual(
      published.sort(),
      [...store.revoked].sort(),
      'published CRL equals the revoked rows after a restart',
    );
  }

  function record(t: Tally, lines: string[]): void {
    for (const l of lines) {
      const [kind, value] = l.split(' ');
      if (kind === 'issued') t.issued.add(norm(value!));
      else if (kind === 'revoked') t.revoked.add(norm(value!));
      else if (kind === 'published') t.published++;
      else if (kind === 'backup') t.backups++;
    }
  }

  /** A real CLI writer: issue, revoke or backup, killed after `delay` ms unless it finished first. */
  async function cliRound(t: Tally, random: () => number, k: number, delay: number): Promise<void> {
    const op = random();
    let argv: string[];
    let onSuccess: () => void;
    if (op < 0.5) {
      const out = join(dir, `cli-${k}.ovpn`);
      argv = ['cert', 'issue', `c-${k}`, '--owner', 'tess', '--out', out];
      onSuccess = () =>
        t.issued.add(norm(new X509Certificate(profileBlock(readFileSync(out, 'utf8'), 'cert')).serialNumber));
    } else if (op < 0.8) {
      const store = readStore();
      const valid = [...store.all].filter((s) => !store.revoked.has(s));
      const victim = valid[Math.floor(random() * valid.length)];
      if (!victim) return;
      argv = ['cert', 'revoke', victim, '--reason', 'superseded'];
      onSuccess = () => t.revoked.add(victim);
    } else {
      const out = join(dir, 'backups', `cli-${k}.pgbackup`);
      argv = ['backup', '--out', out, '--passphrase-file', join(dir, 'backup.pass')];
      onSuccess = () => t.backups++;
    }
    const run = startTortureProcess([CLI, '--data-dir', dataDir, ...argv], {
      PODGATE_VPN_ENDPOINTS: '172.18.12.21',
    });
    live.push(run.child);
    const timer = sleep(delay).then(() => run.child.kill('SIGKILL'));
    const exit = await run.exited;
    void timer;
    if (exit.code === 0) onSuccess();
    else if (exit.signal === 'SIGKILL') t.cliKills++;
    else if (!/already revoked|already exists/.test(run.stderr()))
      assert.fail(`CLI ${argv.join(' ')} failed: ${run.stderr()}`);
  }

  it('loses nothing that was acknowledged', async () => {
    const seed = Number(process.env.PODGATE_TORTURE_SEED ?? Date.now() % 1_000_000);
    const random = rng(seed);
    const t: Tally = {
      kills: 0,
      workerKills: 0,
      cliKills: 0,
      issued: new Set(),
      revoked: new Set(),
      published: 0,
      backups: 0,
      backupsChecked: 0,
      tempFilesLeft: 0,
      lost: [],
    };
    const started = Date.now();
    let printed = 0;
    // at least KILLS kills, and (on a slow machine) on until both issues and revocations were acknowledged
    const progressed = () => t.issued.size > 0 && t.revoked.size > 0;
    for (let k = 0; (t.kills < KILLS || !progressed()) && k < KILLS * 5; k++) {
      // two serve-like writers at once (web app and `server run` share a data dir), each killed at its
      // own random point; every third round a CLI writer runs beside them
      const workers = Array.from({ length: WORKERS }, (_, j) =>
        startTortureProcess([WORKER, dir, String((seed * 10_000 + k) * 4 + j)]),
      );
      for (const w of workers) live.push(w.child);
      await Promise.all(workers.map((w) => w.ready));
      const cli = k % 3 === 2 ? cliRound(t, random, k, Math.floor(random() * 1500)) : Promise.resolve();
      await Promise.all(
        workers.map(async (w) => {
          await sleep(Math.floor(random() * 1000));
          w.child.kill('SIGKILL');
        }),
      );
      const exits = await Promise.all(workers.map((w) => w.exited));
      await cli;
      exits.forEach((exit, j) => {
        if (exit.signal !== 'SIGKILL')
          assert.fail(`worker exited by itself (${exit.code}): ${workers[j]!.stderr()}`);
      });
      t.workerKills += WORKERS;
      for (const w of workers) record(t, w.lines);
      t.kills = t.workerKills + t.cliKills;
      check(t, t.kills);
      if (k % 10 === 9) await restartRepublishes();
      if (KILLS >= 100 && t.kills - printed >= 50) {
        printed = t.kills;
        console.log(
          `      ${t.kills} kills, ${t.issued.size} issued, ${t.revoked.size} revoked, ${t.backups} backups, ` +
            `${t.lost.length} lost (${Math.round((Date.now() - started) / 1000)} s)`,
        );
      }
    }
    await restartRepublishes();
    const secs = Math.round((Date.now() - started) / 1000);
    console.log(
      `      seed ${seed}: ${t.kills} kills survived (${t.workerKills} serve-like workers, ${t.cliKills} CLI writers) in ${secs} s; ` +
        `acknowledged ${t.issued.size} issues, ${t.revoked.size} revocations, ${t.published} publishes, ${t.backups} backups ` +
        `(${t.backupsChecked} backup files restored and checked); temp files left by kills: ${t.tempFilesLeft}; lost: ${t.lost.length}`,
    );
    assert.deepEqual(t.lost, [], 'nothing acknowledged was lost');
    assert.ok(t.issued.size > 0 && t.revoked.size > 0, 'the writers made progress');
  });
});
