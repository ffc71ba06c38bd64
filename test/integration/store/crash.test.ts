import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../../src/store/index.js';

const WORKER = fileURLToPath(new URL('../../helpers/store-crash-worker.js', import.meta.url));
const BATCH = 8;

/**
 * Runs the worker until it has acknowledged `commits` batches, then SIGKILLs it (no chance to finish the
 * transaction in flight or close the database). Returns the highest acknowledged batch number.
 * Uses spawn rather than lib/exec: the test must read stdout while the child runs and kill it mid-stream.
 */
function runAndKill(file: string, commits: number, children: ChildProcess[], tag = '0'): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, file, String(BATCH), tag], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let acked = 0;
    let last = -1;
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      buf += b.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const line of lines) {
        last = Number(line);
        acked += 1;
        if (acked === commits) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`worker exited ${code} ${signal}: ${stderr}`));
      else resolve(last);
    });
  });
}

/** The whole file is sound and every batch is all-or-nothing. */
function checkFile(file: string): void {
  const db = new Database(file);
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    assert.deepEqual(db.pragma('foreign_key_check'), []);
    const badRevoked = db
      .prepare(
        "SELECT count(*) FROM certificates WHERE status = 'revoked' AND (revoked_at IS NULL OR revocation_reason IS NULL)",
      )
      .pluck()
      .get();
    assert.equal(badRevoked, 0, 'revoked rows without time or reason');
    // every batch: BATCH certificates, exactly one revoked
    const partial = db
      .prepare(
        `SELECT device_name, count(*) AS n, sum(status = 'revoked') AS r FROM certificates
         GROUP BY device_name HAVING n <> ${BATCH} OR r <> 1`,
      )
      .all();
    assert.deepEqual(partial, [], 'half-written batches');
  } finally {
    db.close();
  }
}

/** One worker's batches: each with its audit row and counter, at least as many as it acknowledged. */
function checkWorker(file: string, lastAcked: number, tag = '0'): { batches: number; rows: number } {
  const db = new Database(file, { readonly: true });
  try {
    const batches = db
      .prepare('SELECT count(DISTINCT device_name) FROM certificates WHERE device_name LIKE ?')
      .pluck()
      .get(`batch-${tag}-%`) as number;
    const audits = db
      .prepare("SELECT count(*) FROM audit_log WHERE action = 'crash.batch' AND target LIKE ?")
      .pluck()
      .get(`${tag}-%`) as number;
    const next = db
      .prepare('SELECT value FROM settings WHERE key = ?')
      .pluck()
      .get(`crash.next.${tag}`) as string;
    assert.equal(audits, batches, 'one audit row per batch');
    assert.equal(Number(next), batches, 'counter matches the batches present');
    assert.ok(batches >= lastAcked + 1, `${batches} batches on disk, ${lastAcked + 1} acknowledged`);
    return { batches, rows: batches * BATCH };
  } finally {
    db.close();
  }
}

describe('store: crash safety (SIGKILL mid-stream)', function () {
  this.timeout(120_000);
  let dir: string;
  const children: ChildProcess[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-crash-'));
  });
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('every acknowledged commit survives, nothing is half-written, the file stays sound (4 kills)', async () => {
    const file = join(dir, 'podgate.db');
    let prevBatches = 0;
    for (const commits of [50, 137, 23, 301]) {
      const lastAcked = await runAndKill(file, commits, children);
      checkFile(file);
      const { batches, rows } = checkWorker(file, lastAcked);
      assert.ok(batches > prevBatches);
      console.log(
        `      killed after ${commits} acks: last acked batch ${lastAcked}, ${batches} batches / ${rows} rows on disk`,
      );
      prevBatches = batches;
    }
    // and the store opens normally afterwards (migrations are a no-op, API reads work)
    const store = SqliteStore.open(file);
    try {
      assert.equal((await store.listCerts({ status: 'revoked' })).total, prevBatches);
      assert.equal(
        (await store.listRevoked()).every((r) => r.revokedAt instanceof Date && r.revocationReason),
        true,
      );
    } finally {
      await store.close();
    }
  });

  it('two processes writing at once wait for each other (busy_timeout) and both survive SIGKILL', async () => {
    const file = join(dir, 'two-writers.db');
    await SqliteStore.open(file).close(); // migrate once, so the workers race only on their writes
    const [a, b] = await Promise.all([
      runAndKill(file, 150, children, 'A'),
      runAndKill(file, 150, children, 'B'),
    ]);
    checkFile(file);
    const ra = checkWorker(file, a, 'A');
    const rb = checkWorker(file, b, 'B');
    console.log(`      two writers: ${ra.batches} + ${rb.batches} batches, none lost, none half-written`);
  });
});
