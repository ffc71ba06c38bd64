/**
 * The image's build stage runs scripts/bundle.mjs: every top-level path of the repository that the bundle
 * script reads at build time must be copied into that stage first (the real image build in the node
 * suites fails otherwise, but only after minutes; this says it at once).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVE_NODE_ARGS } from '../../../bench/serve-node-args.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', '..');

describe('Dockerfile', () => {
  it('the build stage copies everything the bundle script reads (src, templates, tsconfig.json)', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const buildStage = dockerfile.split(/^FROM /m)[1]!;
    const copied = [...buildStage.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    const script = readFileSync(join(root, 'scripts', 'bundle.mjs'), 'utf8');
    // paths the script joins onto the repository root, e.g. join(root, 'templates', name)
    const read = new Set([...script.matchAll(/join\(root, '([^']+)'/g)].map((m) => m[1]!));
    read.delete('dist'); // where it writes

    assert.ok(read.has('templates'), 'the check sees the templates the bundle precompiles');
    for (const path of read) assert.ok(copied.includes(path), `COPY ${path} before the bundle runs`);
  });

  it('runs node with the options the web benchmark measures serve with (young generation capped)', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const runtime = dockerfile.split(/^FROM /m).at(-1)!;
    const env = /^ENV NODE_OPTIONS=(.+)$/m.exec(runtime);
    assert.ok(env, 'the runtime stage sets NODE_OPTIONS');
    assert.deepEqual(env[1]!.trim().split(/\s+/), [...SERVE_NODE_ARGS]);
    assert.ok(SERVE_NODE_ARGS.some((a) => a.startsWith('--max-semi-space-size=')));
  });

  it('makes the code cache under the runtime NODE_OPTIONS (V8 rejects a cache made under other flags)', () => {
    const [, build, runtime] = readFileSync(join(root, 'Dockerfile'), 'utf8').split(/^FROM /m);
    const runtimeOptions = /^ENV NODE_OPTIONS=(.+)$/m.exec(runtime!)![1]!.trim();
    const bundle = /^RUN (?:(\S+=\S+) )?node scripts\/bundle\.mjs/m.exec(build!);
    assert.ok(bundle, 'the build stage runs scripts/bundle.mjs');
    assert.equal(bundle[1], `NODE_OPTIONS=${runtimeOptions}`);
  });
});
