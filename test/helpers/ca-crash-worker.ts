// Child process for test/integration/services/ca-change-crash.test.ts: runs `ca rotate` or
// `ca retire-old` on a data dir and stops at a named point of it: `kill` SIGKILLs itself there (a
// crash), `pause` prints "paused POINT" and waits for a line on stdin before going on.
// Usage: node ca-crash-worker.js DIR rotate|retire POINT kill|pause
// Prints "ready" once its context is open, "done KEYID" when the change finished, "error CODE" on an
// AppError (exit 3).
import { readSync } from 'node:fs';
import { AppError } from '../../src/lib/errors.js';
import { retireOldCa, rotateCa } from '../../src/services/ca-rotation.js';
import { testContext } from './context.js';

const [dir, action, point, mode] = process.argv.slice(2) as [string, string, string, string];

function waitForLine(): void {
  const buf = Buffer.alloc(1);
  for (;;) {
    const n = readSync(0, buf, 0, 1, null);
    if (n === 0 || buf[0] === 10) return;
  }
}

const probe = (p: string) => {
  if (p !== point) return;
  if (mode === 'kill') process.kill(process.pid, 'SIGKILL');
  process.stdout.write(`paused ${p}\n`);
  waitForLine();
};

const ctx = await testContext(dir, { 'ca.keyType': 'ec-p384' });
process.stdout.write('ready\n');
try {
  if (action === 'rotate') {
    const r = await rotateCa(ctx, { actor: 'worker', probe });
    process.stdout.write(`done ${r.keyId}\n`);
  } else {
    await retireOldCa(ctx, 'worker', probe);
    process.stdout.write('done\n');
  }
} catch (err) {
  process.stdout.write(`error ${err instanceof AppError ? err.code : String(err)}\n`);
  process.exitCode = 3;
} finally {
  await ctx.close();
}
