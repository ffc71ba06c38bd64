import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tryFileLock, withAsyncFileLock } from '../../../src/store/file-lock.js';

const LOCK_MODULE = fileURLToPath(new URL('../../../src/store/file-lock.js', import.meta.url));

describe('store: the file lock held across asynchronous work', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'podgate-lock-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('one holder at a time in a process; released, it can be taken again', () => {
    const file = join(dir, '.x.lock');
    const a = tryFileLock(file);
    assert.ok(a);
    assert.equal(tryFileLock(file), undefined, 'a second connection does not get it');
    a.release();
    a.release(); // twice is harmless
    const b = tryFileLock(file);
    assert.ok(b, 'free again');
    b.release();
  });

  it('another process holding it makes us wait; its death (SIGKILL) releases it', async () => {
    const file = join(dir, '.x.lock');
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(LOCK_MODULE)}); const l = m.tryFileLock(process.argv[1]); console.log(l ? 'held' : 'busy'); setInterval(() => {}, 1000);`,
        file,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const first = await new Promise<string>((resolve) =>
        child.stdout.once('data', (d: Buffer) => resolve(String(d))),
      );
      assert.equal(first.trim(), 'held');
      assert.equal(tryFileLock(file), undefined, 'held by the other process');
      let ran = false;
      const waiting = withAsyncFileLock(
        file,
        async () => {
          ran = true;
          return 'done';
        },
        { waitMs: 60_000, pollMs: 20, onTimeout: () => new Error('timed out') },
      );
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(ran, false, 'waits while the other process holds the lock');
      child.kill('SIGKILL');
      assert.equal(await waiting, 'done');
      assert.equal(ran, true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("gives up with the caller's error after waitMs; the lock is not left taken", async () => {
    const file = join(dir, '.x.lock');
    const held = tryFileLock(file)!;
    await assert.rejects(
      withAsyncFileLock(file, async () => 1, {
        waitMs: 50,
        pollMs: 10,
        onTimeout: () => new Error('busy: try later'),
      }),
      /busy: try later/,
    );
    held.release();
    assert.equal(
      await withAsyncFileLock(file, async () => 2, { waitMs: 0, onTimeout: () => new Error('x') }),
      2,
    );
    const again = tryFileLock(file);
    assert.ok(again, 'released after fn');
    again.release();
  });
});
