/**
 * Temp files of atomic writes cut short by SIGKILL (issue 12): a real writer process is killed while it
 * writes into `<dataDir>/server/`, and the next start-up (openContext, as every command does) removes
 * what it left, and nothing else.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { removeStaleTempFiles } from '../../../src/lib/fs-atomic.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FS_ATOMIC = pathToFileURL(join(process.cwd(), 'dist/src/lib/fs-atomic.js')).href;

/** Runs a process that rewrites `file` atomically in a loop (8 MiB + fsync each) and SIGKILLs it mid-way. */
async function killWriter(file: string): Promise<void> {
  const code = `import { writeFileAtomic } from ${JSON.stringify(FS_ATOMIC)};
    const data = Buffer.alloc(8 * 1024 * 1024, 7);
    process.stdout.write('go\\n');
    for (;;) writeFileAtomic(${JSON.stringify(file)}, data, 0o644);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  await sleep(30 + Math.random() * 40);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

const temps = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.tmp'));

describe('start-up removes temp files left by killed writers', function () {
  this.timeout(60_000);

  it('SIGKILLed writers leave .tmp files in server/; the next start removes only those', async () => {
    const t = tempDir();
    const ctx0 = await testContext(t.dir);
    const dataDir = ctx0.dataDir;
    await ctx0.close();
    const server = join(dataDir, 'server');
    mkdirSync(server, { recursive: true });
    for (let i = 0; i < 20 && temps(server).length < 2; i++) await killWriter(join(server, 'crl.pem'));
    const left = temps(server);
    assert.ok(left.length >= 1, 'the kills left temp files behind (the fault is real)');
    // Not ours, or not stale: a temp of a live writer (this process), and files that only look alike.
    const keep = [
      `.crl.pem.${process.pid}.0123456789ab.tmp`,
      'notes.tmp',
      '.keep.tmp',
      'crl.pem.0123456789ab.tmp',
    ];
    for (const k of keep) writeFileSync(join(server, k), 'x');
    mkdirSync(join(server, '.dir.999999.0123456789ab.tmp'));

    const ctx = await testContext(t.dir);
    await ctx.close();
    for (const name of left) assert.ok(!existsSync(join(server, name)), `${name} removed at start-up`);
    for (const k of [...keep, '.dir.999999.0123456789ab.tmp'])
      assert.ok(existsSync(join(server, k)), `${k} left alone`);
    t.cleanup();
  });

  it('temp names of older releases (no pid) go only once they are 10 minutes old', () => {
    const t = tempDir();
    const legacy = '.crl.pem.0123456789ab.tmp';
    writeFileSync(join(t.dir, legacy), 'x');
    assert.deepEqual(removeStaleTempFiles(t.dir), [], 'fresh: may still be written');
    assert.deepEqual(removeStaleTempFiles(t.dir, Date.now() + 11 * 60_000), [legacy]);
    assert.deepEqual(removeStaleTempFiles(join(t.dir, 'missing')), []);
    t.cleanup();
  });
});
