/**
 * The bundle's V8 code cache (scripts/bundle.mjs): dist/bundle/podgate.js compiles podgate-main.cjs with
 * podgate-main.cache. Checks that V8 accepts the cache this build made (under the flags the tests run
 * with, the defaults), and that a cache V8 rejects (another Node, other flags, a damaged file) or no cache
 * at all only costs time: the command still works. A preload records each vm.Script's
 * cachedDataRejected; the rejected case is the control that the record can say "rejected".
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE, runNode, tempDir } from '../../helpers/cli.js';

// CommonJS preload: wraps vm.Script before the loader takes it, and writes what V8 said of the cache.
const PRELOAD = `
const vm = require('node:vm');
const { appendFileSync } = require('node:fs');
const Script = vm.Script;
vm.Script = function (source, options) {
  const s = new Script(source, options);
  appendFileSync(process.env.CACHE_TRACE, JSON.stringify({
    withCache: options !== undefined && options.cachedData !== undefined,
    rejected: s.cachedDataRejected ?? null,
  }) + '\\n');
  return s;
};
`;

async function run(entry: string, args: string[], preload: string, trace: string) {
  writeFileSync(trace, '');
  const r = await runNode(['--require', preload, entry, ...args], {
    ...process.env,
    PODGATE_LOG_LEVEL: 'error',
    CACHE_TRACE: trace,
    NODE_OPTIONS: '',
  });
  const scripts = readFileSync(trace, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { withCache: boolean; rejected: boolean | null });
  return { ...r, scripts };
}

describe('CLI bundle: V8 code cache', function () {
  this.timeout(60_000);
  const t = tempDir();
  const preload = join(t.dir, 'cache-trace.cjs');
  const trace = join(t.dir, 'trace.jsonl');
  // a copy of dist/bundle beside it (node_modules must resolve from it), with a damaged or no cache
  const copy = join(BUNDLE, '..', '..', `bundle-cache-test-${process.pid}`);
  const args = ['--data-dir', join(t.dir, 'data'), 'cert', 'list'];

  before(() => {
    writeFileSync(preload, PRELOAD);
    cpSync(join(BUNDLE, '..'), copy, { recursive: true });
  });
  after(() => {
    rmSync(copy, { recursive: true, force: true });
    t.cleanup();
  });

  it('the cache the build made is accepted', async () => {
    const r = await run(BUNDLE, args, preload, trace);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SERIAL/);
    assert.deepEqual(r.scripts, [{ withCache: true, rejected: false }]);
  });

  it('a damaged cache is rejected and the command works as without one (control)', async () => {
    const cache = join(copy, 'podgate-main.cache');
    const bytes = readFileSync(cache);
    bytes.fill(0x5a, 0, 64);
    writeFileSync(cache, bytes);
    const r = await run(join(copy, 'podgate.js'), args, preload, trace);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SERIAL/);
    assert.deepEqual(r.scripts, [{ withCache: true, rejected: true }]);
  });

  it('without a cache the bundle compiles from source', async () => {
    rmSync(join(copy, 'podgate-main.cache'));
    const r = await run(join(copy, 'podgate.js'), args, preload, trace);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /SERIAL/);
    assert.deepEqual(r.scripts, [{ withCache: false, rejected: null }]);
  });
});
