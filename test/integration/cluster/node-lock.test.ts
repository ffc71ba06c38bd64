/**
 * The real test node has fixed names (netns, run dir, cgroup parent), so one machine runs one at a time:
 * the lock file says who has it. Checked with real processes: a live holder refuses a second run with its
 * pid and how to free the node, a holder that died is taken over, and `up --with-node` holds it until `down`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireNodeLock, nodeHeldBy, releaseNodeLock } from '../../cluster/node/node.js';

describe('test node lock (one real node per machine)', () => {
  let dir: string;
  let saved: string | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-node-lock-'));
    saved = process.env.PODGATE_TEST_NODE_LOCK;
    process.env.PODGATE_TEST_NODE_LOCK = join(dir, 'node.lock');
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.PODGATE_TEST_NODE_LOCK;
    else process.env.PODGATE_TEST_NODE_LOCK = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  const lockFile = () => process.env.PODGATE_TEST_NODE_LOCK!;

  it('a live holder refuses a second run, naming its pid and the way out', async () => {
    // another process (alive while the test runs) holds the node
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(
        lockFile(),
        JSON.stringify({ pid: other.pid, holder: 'run A', untilDown: false, since: '2026-01-01T00:00:00Z' }),
      );
      assert.throws(
        () => acquireNodeLock('run B'),
        (err: Error) =>
          err.message.includes(`in use by run A (pid ${other.pid}`) &&
          err.message.includes('npm run test-cluster -- down'),
      );
      assert.equal(JSON.parse(readFileSync(lockFile(), 'utf8')).holder, 'run A', 'the holder keeps the lock');
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('a lock left by a run that died is taken over, and released by its new holder only', async () => {
    const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => dead.on('exit', r));
    writeFileSync(
      lockFile(),
      JSON.stringify({ pid: dead.pid, holder: 'crashed run', untilDown: false, since: 'x' }),
    );
    acquireNodeLock('this run');
    const lock = JSON.parse(readFileSync(lockFile(), 'utf8')) as { pid: number; holder: string };
    assert.deepEqual([lock.pid, lock.holder], [process.pid, 'this run']);
    assert.equal(nodeHeldBy(), undefined, 'not busy for its own holder');
    releaseNodeLock();
    assert.equal(existsSync(lockFile()), false);
  });

  it('`up --with-node` holds the node after its process exits, until down', async () => {
    const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => dead.on('exit', r));
    writeFileSync(
      lockFile(),
      JSON.stringify({ pid: dead.pid, holder: 'up --with-node', untilDown: true, since: 'x' }),
    );
    assert.throws(() => acquireNodeLock('a test run'), /in use by up --with-node/);
    releaseNodeLock(); // not ours: stays
    assert.equal(existsSync(lockFile()), true);
    releaseNodeLock(true); // `down`
    assert.equal(existsSync(lockFile()), false);
  });
});
