/**
 * `ca rotate` and `ca retire-old` killed at each of their steps (a real child process SIGKILLs itself at
 * an injected point, test/helpers/ca-crash-worker.ts), and two rotations racing in two processes: the
 * next start always finds a CA whose key matches its certificate, the old CA kept as "previous" when
 * the switch happened, and nothing half-done left in the data dir.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { retireOldCa, rotateCa } from '../../../src/services/ca-rotation.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

const WORKER = fileURLToPath(new URL('../../helpers/ca-crash-worker.js', import.meta.url));
const EC = { 'ca.keyType': 'ec-p384' };

interface Worker {
  child: ChildProcess;
  /** Resolves with the first line that matches. */
  line(re: RegExp): Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  out(): string;
}

function worker(dir: string, action: string, point: string, mode: 'kill' | 'pause'): Worker {
  const child = spawn(process.execPath, [WORKER, dir, action, point, mode], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let buf = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const w of waiters.splice(0)) w();
      resolve({ code, signal });
    }),
  );
  let exited = false;
  void exit.then(() => (exited = true));
  const line = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const found = buf.split('\n').find((l) => re.test(l));
        if (found !== undefined) return resolve(found);
        if (exited) return reject(new Error(`worker exited without ${re}: ${buf} ${err}`));
        waiters.push(check);
      };
      check();
    });
  return { child, line, exit, out: () => buf + err };
}

async function oldKeyId(dir: string): Promise<string> {
  const ctx = await testContext(dir, EC);
  const id = ctx.ca.keyId;
  await ctx.close();
  return id;
}

const leftovers = (dir: string) => readdirSync(join(dir, 'data')).filter((n) => n.startsWith('ca-next.'));

describe('CA changes cut short by a crash, and two at once', function () {
  this.timeout(120_000);

  const rotatePoints = [
    'rotate:next-key',
    'rotate:next-cert',
    'rotate:key-to-previous',
    'rotate:key-to-current',
    'rotate:cert-to-previous',
    'rotate:cert-to-current',
  ];
  for (const point of rotatePoints) {
    it(`ca rotate killed at ${point}: the next start loads a matching pair (rotation undone or finished)`, async () => {
      const t = tempDir();
      try {
        const old = await oldKeyId(t.dir);
        const w = worker(t.dir, 'rotate', point, 'kill');
        const { signal } = await w.exit;
        assert.equal(signal, 'SIGKILL', `the worker reached ${point}: ${w.out()}`);
        const ctx = await testContext(t.dir, EC); // throws ca_key_mismatch when the pair is mixed
        try {
          if (point === 'rotate:next-key') {
            assert.equal(ctx.ca.keyId, old, 'no certificate for the new key: the old CA stays');
            assert.equal(ctx.previousCa, undefined);
          } else {
            assert.notEqual(ctx.ca.keyId, old, 'the rotation was finished');
            assert.equal(ctx.previousCa?.keyId, old, 'the old CA is kept as previous');
          }
          assert.deepEqual(leftovers(t.dir), []);
          await ctx.users.create({ actor: 't', name: 'erin', role: 'user' });
          await ctx.devices.issue({ actor: 't', owner: 'erin', commonName: 'erin-laptop' });
        } finally {
          await ctx.close();
        }
      } finally {
        t.cleanup();
      }
    });
  }

  it('ca retire-old killed between its renames: the next rotation still pairs its key and certificate', async () => {
    const t = tempDir();
    try {
      const first = await oldKeyId(t.dir);
      let ctx = await testContext(t.dir, EC);
      await rotateCa(ctx, { actor: 't' });
      await ctx.close();
      const w = worker(t.dir, 'retire', 'retire:cert', 'kill');
      assert.equal((await w.exit).signal, 'SIGKILL', w.out());
      ctx = await testContext(t.dir, EC);
      const second = ctx.ca.keyId;
      assert.notEqual(second, first);
      assert.equal(ctx.previousCa, undefined, 'the old CA is no longer trusted');
      assert.ok(
        !existsSync(join(t.dir, 'data', 'ca-previous.key.enc')),
        'the old key joined its certificate',
      );
      await rotateCa(ctx, { actor: 't' });
      await ctx.close();
      ctx = await testContext(t.dir, EC);
      assert.equal(ctx.previousCa?.keyId, second, 'the second CA is now the previous one');
      await retireOldCa(ctx, 't');
      await ctx.close();
      ctx = await testContext(t.dir, EC);
      assert.equal(ctx.previousCa, undefined);
      await ctx.close();
    } finally {
      t.cleanup();
    }
  });

  it('two ca rotate at once: one switches, the other is refused, the key and certificate match', async () => {
    const t = tempDir();
    try {
      const old = await oldKeyId(t.dir);
      const a = worker(t.dir, 'rotate', 'rotate:next-key', 'pause');
      await a.line(/^paused/);
      const b = worker(t.dir, 'rotate', 'rotate:next-key', 'pause');
      // Without a lock B gets as far as A (its ca-next.key.enc over A's); with one it waits for A.
      // Either way A goes on first, then B.
      await Promise.race([b.line(/^paused/), new Promise((r) => setTimeout(r, 3000))]);
      a.child.stdin!.write('\n');
      await a.exit;
      b.child.stdin!.write('\n');
      await b.exit;
      assert.match(a.out(), /^done /m, a.out());
      const ctx = await testContext(t.dir, EC); // throws ca_key_mismatch when A's cert met B's key
      try {
        assert.equal(ctx.previousCa?.keyId, old, 'one rotation: the first CA is the previous one');
        assert.match(b.out(), /^error conflict/m, `the second rotation is refused: ${b.out()}`);
        assert.deepEqual(leftovers(t.dir), []);
      } finally {
        await ctx.close();
      }
    } finally {
      t.cleanup();
    }
  });
});
