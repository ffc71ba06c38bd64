/**
 * Crash safety on PostgreSQL with two writers: two `serve`-like processes (test/helpers/torture-worker.ts,
 * the real services), each with a data dir of its own on one PostgreSQL database (Debian's server,
 * started by the test), issue, revoke, publish and back up until the parent SIGKILLs each at its own
 * random moment; then they are started again on the same data dirs, like replicas restarted by their
 * Deployment. After every round:
 *   - every acknowledged issue has its row; no serial acknowledged twice, no tunnel address held twice;
 *   - every acknowledged revocation is revoked in the store and listed in the stored CRL, which verifies
 *     against the CA and lists exactly the revoked rows;
 *   - CRL numbers strictly rising: no two acknowledged revocations got the same number, each writer's
 *     numbers rise, the stored number never goes back and is at least the highest acknowledged;
 *   - each writer's published CRL verifies, names only revoked rows, and holds what that writer acknowledged;
 *   - every backup file that exists under its final name decrypts, and its CRL equals its revoked rows.
 * At the end `openssl crl -verify` accepts the final CRL. PODGATE_TORTURE_PG_ROUNDS (default 8) sets
 * the rounds (two kills each).
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { serverDir } from '../../../src/openvpn/local-publisher.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { decodeBackup } from '../../../src/services/backup-format.js';
import { testContext } from '../../helpers/context.js';
import { sharedPostgres } from '../../helpers/pg-store.js';
import { normSerial as norm, rng, startTortureProcess } from '../../helpers/torture-process.js';

const WORKER = fileURLToPath(new URL('../../helpers/torture-worker.js', import.meta.url));
const ROUNDS = Number(process.env.PODGATE_TORTURE_PG_ROUNDS ?? 8);
const WRITERS = 2;
const BACKUP_PASS = 'torture passphrase';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Tally {
  issued: string[];
  /** serial -> CRL number its revocation was acknowledged in. */
  revoked: Map<string, number>;
  /** per writer: what it acknowledged, in order. */
  revokedBy: { serial: string; crl: number }[][];
  published: number;
  backups: string[];
  backupsChecked: number;
  storedCrl: number;
  lost: string[];
}

describe(`torture (PostgreSQL): ${ROUNDS} rounds of SIGKILLs to two writers`, function () {
  this.timeout(ROUNDS * 20_000 + 120_000);
  let dir: string;
  let caPem: string;
  let client: pg.Client;
  let overrides: Record<string, unknown>;
  const live: ChildProcess[] = [];
  const checkedBackups = new Set<string>();

  before(async () => {
    const server = await sharedPostgres();
    const database = await server.createDatabase('torture');
    dir = mkdtempSync(join(tmpdir(), 'podgate-torture-pg-'));
    writeFileSync(join(dir, 'ca-passphrase'), 'torture-shared-ca-passphrase\n', { mode: 0o600 });
    overrides = {
      'store.url': server.url(database),
      'store.passwordFile': server.passwordFile,
      'store.poolSize': 3,
      'ca.passphraseFile': join(dir, 'ca-passphrase'),
      'ca.keyType': 'ec-p384',
      'vpn.keyType': 'ec-p256',
    };
    const ctx = await testContext(dir, { ...overrides, dataDir: join(dir, 'setup') });
    await ctx.users.create({ actor: 'torture', name: 'tess', role: 'user' });
    await ctx.server.ensure();
    caPem = ctx.ca.certPem;
    await ctx.close();
    client = await server.connect(database);
  });
  after(async () => {
    for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await client?.end();
    if (dir && !process.env.PODGATE_TORTURE_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  async function readStore(): Promise<{
    all: Set<string>;
    revoked: Set<string>;
    crl: { number: number; pem: string };
  }> {
    const rows = (
      await client.query<{ serial: string; status: string }>('SELECT serial, status FROM certificates')
    ).rows;
    const crl = (
      await client.query<{ number: string; pem: string }>('SELECT number, pem FROM crl_state WHERE id = 1')
    ).rows[0]!;
    return {
      all: new Set(rows.map((r) => norm(r.serial))),
      revoked: new Set(rows.filter((r) => r.status === 'revoked').map((r) => norm(r.serial))),
      crl: { number: Number(crl.number), pem: crl.pem },
    };
  }

  async function check(t: Tally, where: string): Promise<void> {
    const store = await readStore();
    for (const s of t.issued) if (!store.all.has(s)) t.lost.push(`${where}: issued ${s} has no row`);
    assert.equal(new Set(t.issued).size, t.issued.length, `${where}: a serial was acknowledged twice`);
    for (const s of t.revoked.keys())
      if (!store.revoked.has(s)) t.lost.push(`${where}: revoked ${s} not revoked in the store`);
    const inCrl = new Set(verifyCrl(store.crl.pem, caPem).revokedSerials.map(norm));
    assert.deepEqual(
      [...inCrl].sort(),
      [...store.revoked].sort(),
      `${where}: stored CRL equals the revoked rows`,
    );
    for (const s of t.revoked.keys())
      if (!inCrl.has(s)) t.lost.push(`${where}: acknowledged revocation ${s} missing from the stored CRL`);

    const numbers = [...t.revoked.values()];
    assert.equal(
      new Set(numbers).size,
      numbers.length,
      `${where}: two revocations acknowledged in one CRL number`,
    );
    for (const [j, acks] of t.revokedBy.entries())
      for (let i = 1; i < acks.length; i++)
        assert.ok(acks[i]!.crl > acks[i - 1]!.crl, `${where}: writer ${j}'s CRL numbers went back`);
    assert.ok(store.crl.number >= t.storedCrl, `${where}: stored CRL number went back`);
    assert.ok(store.crl.number >= Math.max(0, ...numbers), `${where}: stored CRL below an acknowledged one`);
    t.storedCrl = store.crl.number;

    const twice = await client.query(
      'SELECT address FROM device_addresses GROUP BY address HAVING count(*) > 1',
    );
    assert.equal(twice.rowCount, 0, `${where}: a tunnel address held twice`);

    for (let j = 0; j < WRITERS; j++) {
      const file = join(serverDir(join(dir, `data-${j}`)), 'crl.pem');
      if (!existsSync(file)) continue;
      const published = new Set(verifyCrl(readFileSync(file, 'utf8'), caPem).revokedSerials.map(norm));
      for (const s of published)
        assert.ok(store.revoked.has(s), `${where}: writer ${j} published ${s}, not revoked in the store`);
      for (const { serial } of t.revokedBy[j]!)
        if (!published.has(serial))
          t.lost.push(`${where}: writer ${j}'s acknowledged revocation ${serial} not in its published CRL`);
    }

    for (const file of t.backups) {
      if (checkedBackups.has(file)) continue;
      checkedBackups.add(file);
      const decoded = decodeBackup(readFileSync(file), BACKUP_PASS);
      const copy = join(dir, 'check.db');
      writeFileSync(copy, decoded.entries.find((e) => e.path === 'podgate.db')!.data);
      const db = new Database(copy, { readonly: true });
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        const revokedRows = (
          db.prepare("SELECT serial FROM certificates WHERE status = 'revoked'").pluck().all() as string[]
        ).map(norm);
        const pem = db.prepare('SELECT pem FROM crl_state WHERE id = 1').pluck().get() as string;
        assert.deepEqual(
          verifyCrl(pem, caPem).revokedSerials.map(norm).sort(),
          revokedRows.sort(),
          `${where}: backup ${file} CRL equals its revoked rows`,
        );
      } finally {
        db.close();
        rmSync(copy, { force: true });
      }
      t.backupsChecked++;
    }
  }

  function record(t: Tally, j: number, lines: string[]): void {
    for (const l of lines) {
      const [kind, value, extra] = l.split(' ');
      if (kind === 'issued') t.issued.push(norm(value!));
      else if (kind === 'revoked') {
        t.revoked.set(norm(value!), Number(extra));
        t.revokedBy[j]!.push({ serial: norm(value!), crl: Number(extra) });
      } else if (kind === 'published') t.published++;
      else if (kind === 'backup') t.backups.push(value!);
    }
  }

  it('loses nothing acknowledged; CRL numbers rise; nothing given twice; the CRL verifies', async () => {
    const seed = Number(process.env.PODGATE_TORTURE_SEED ?? Date.now() % 1_000_000);
    const random = rng(seed);
    const t: Tally = {
      issued: [],
      revoked: new Map(),
      revokedBy: Array.from({ length: WRITERS }, () => []),
      published: 0,
      backups: [],
      backupsChecked: 0,
      storedCrl: 0,
      lost: [],
    };
    const started = Date.now();
    let kills = 0;
    const progressed = () => t.issued.length > 0 && t.revoked.size > 0;
    for (let k = 0; (k < ROUNDS || !progressed()) && k < ROUNDS * 4; k++) {
      const writers = Array.from({ length: WRITERS }, (_, j) =>
        startTortureProcess([
          WORKER,
          dir,
          String((seed * 10_000 + k) * 4 + j),
          JSON.stringify({ ...overrides, dataDir: join(dir, `data-${j}`) }),
        ]),
      );
      for (const w of writers) live.push(w.child);
      // each is killed at its own random moment after it came up (start-up itself is killed too at times)
      await Promise.all(
        writers.map(async (w) => {
          if (random() < 0.9) await w.ready;
          await sleep(400 + Math.floor(random() * 2000));
          w.child.kill('SIGKILL');
        }),
      );
      const exits = await Promise.all(writers.map((w) => w.exited));
      exits.forEach((exit, j) => {
        if (exit.signal !== 'SIGKILL')
          assert.fail(`writer exited by itself (${exit.code}): ${writers[j]!.stderr()}`);
      });
      kills += WRITERS;
      writers.forEach((w, j) => record(t, j, w.lines));
      const before = t.lost.length;
      await check(t, `after round ${k + 1}`);
      for (const l of t.lost.slice(before)) console.log(`      LOST ${l}`);
    }
    const final = await readStore();
    writeFileSync(join(dir, 'ca.crt'), caPem);
    writeFileSync(join(dir, 'final-crl.pem'), final.crl.pem);
    // openssl exits 0 and says "verify OK" only when the signature checks against the CA
    const verified = spawnSync(
      'openssl',
      ['crl', '-in', join(dir, 'final-crl.pem'), '-CAfile', join(dir, 'ca.crt'), '-verify', '-noout'],
      { encoding: 'utf8' },
    );
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stderr + verified.stdout, /verify OK/);
    console.log(
      `      seed ${seed}: ${kills} SIGKILLs in ${Math.round((Date.now() - started) / 1000)} s; acknowledged ` +
        `${t.issued.length} issues, ${t.revoked.size} revocations (CRL #${final.crl.number}), ${t.published} ` +
        `publishes, ${t.backups.length} backups (${t.backupsChecked} checked); lost: ${t.lost.length}`,
    );
    assert.deepEqual(t.lost, [], 'nothing acknowledged was lost');
    assert.ok(progressed(), 'the writers made progress');
  });
});
