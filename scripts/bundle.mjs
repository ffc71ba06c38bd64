#!/usr/bin/env node
// Bundles the CLI with esbuild into dist/bundle: the files `bin`, `npm start` and the image run.
// - podgate-main.cjs: all of podgate's own code in one CommonJS file (start-up, the common commands, and
//   behind lazy initialisers the code only the heavy commands use: it is never run, nor compiled, by
//   `cert list`). The heavy packages (Kubernetes client, express and the web stack, ssh2, openid-client,
//   handlebars) and the native addons stay outside it, loaded only by the commands that need them.
// - podgate-main.cache: V8's code cache for that file, made here after a warm-up run of `cert list`, so a
//   CLI call deserialises the compiled start-up code instead of parsing and compiling ~1.2 MB of source
//   (Node 20 has no compile cache of its own for modules). V8 rejects a cache made by another Node/V8 or
//   under other V8 flags, and the file is then compiled as usual: slower, never wrong.
// - podgate.js: the start (`bin`), which compiles podgate-main.cjs through node:vm with that cache.
//   Nothing writes into dist/bundle at run time.
// `tsc` still builds dist/src and dist/test for the tests and the types; this script only adds the bundle.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { build } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');

/**
 * Never bundled: native addons (loaded from node_modules as they are) and the heavy packages, which must
 * stay out of the start-up file whatever imports them (test/integration/cli/startup-modules asserts it).
 */
export const EXTERNAL = [
  // native addons
  'better-sqlite3',
  '@node-rs/argon2',
  // heavy, loaded only by the commands that need them
  '@kubernetes/client-node',
  'express',
  'express-handlebars',
  'express-rate-limit',
  'helmet',
  'cookie-parser',
  'handlebars',
  'ssh2',
  'openid-client',
  'prom-client',
  // PostgreSQL driver: only with a postgres:// store.url (and its optional native binding is absent)
  'pg',
  // reads its dictionaries through createRequire (src/services/password-policy.ts)
  '@zxcvbn-ts/language-common',
  // required on first use, synchronously, by the code that needs them (src/lib/logger.ts: the first
  // record written; src/pki/cert-builder.ts: the first certificate built), so that commands that need
  // neither never load them. (yaml is bundled in a file of its own: src/lib/yaml.ts, yamlChunk below.)
  'pino',
  'node-forge',
  'node-forge/*',
];

/**
 * commander loads node:child_process (and with it node:net) at start only to spawn executable
 * subcommands, which podgate does not have: the bundled copy loads it on first use instead. The build
 * fails if commander's source no longer has the line, rather than silently keeping the cost.
 */
const lazyCommanderChildProcess = {
  name: 'lazy-commander-child-process',
  setup(b) {
    b.onLoad({ filter: /node_modules[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const eager = "const childProcess = require('node:child_process');";
      if (!source.includes(eager)) throw new Error(`${args.path}: no "${eager}" to make lazy`);
      const lazy = "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };";
      return { contents: source.replace(eager, lazy), loader: 'js' };
    });
  },
};

/**
 * The profile templates (client.ovpn, server.conf) precompiled: the bundle's
 * src/profiles/precompiled-templates.ts holds their Handlebars specs, keyed as
 * src/profiles/handlebars.ts's templateKey() keys them, so `server run` and `cert issue` load only
 * Handlebars' runtime and compile nothing. Options and key must match compileProfileTemplate's.
 */
const PROFILE_TEMPLATES = ['server.conf.hbs', 'client.ovpn.hbs'];
const PROFILE_TEMPLATE_OPTIONS = { noEscape: true, strict: true };
const precompiledTemplates = {
  name: 'precompiled-templates',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]profiles[\\/]precompiled-templates\.ts$/ }, () => {
      const handlebars = createRequire(import.meta.url)('handlebars');
      const entries = PROFILE_TEMPLATES.map((name) => {
        const text = readFileSync(join(root, 'templates', name), 'utf8');
        const key = createHash('sha256')
          .update(JSON.stringify(PROFILE_TEMPLATE_OPTIONS))
          .update('\0')
          .update(text)
          .digest('hex');
        return `  ${JSON.stringify(key)}: ${handlebars.precompile(text, { ...PROFILE_TEMPLATE_OPTIONS })},`;
      });
      return { contents: `export const PRECOMPILED = {\n${entries.join('\n')}\n};\n`, loader: 'js' };
    });
  },
};

/**
 * The yaml package (read only with a podgate.yaml or a rules file: src/lib/yaml.ts) as one CommonJS file
 * of its own, chunks/yaml.cjs, required on first use: a call without YAML neither loads nor compiles it,
 * and one with it reads one file rather than yaml's ~60 modules from node_modules.
 */
const YAML_CHUNK = './chunks/yaml.cjs';
const yamlChunk = {
  name: 'yaml-chunk',
  setup(b) {
    b.onResolve({ filter: /^yaml$/ }, () => ({ path: YAML_CHUNK, external: true }));
  },
};

/** The loader: podgate.js, the file `bin` points at (CommonJS: dist/bundle/package.json says so). */
const LOADER = `#!/usr/bin/env node
'use strict';
// Runs podgate-main.cjs (the esbuild bundle of the CLI) with V8's code cache made at build time
// (scripts/bundle.mjs): start-up deserialises compiled code instead of parsing and compiling the bundle.
// A cache V8 rejects (another Node or V8 flags) or a missing one means an ordinary compile.
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');
const { Script } = require('node:vm');
const file = join(__dirname, 'podgate-main.cjs');
const cacheFile = join(__dirname, 'podgate-main.cache');
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  // no cache: compile from source
}
// The bundle has no import(): V8 loses the dynamic-import callback of functions it takes from a code
// cache (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), so scripts/bundle.mjs turns every import() into
// require(), which loads the ESM-only packages too on Node >= 20.19.
const script = new Script(
  '(function (exports, require, module, __filename, __dirname, __podgateImportMetaUrl) {' +
    readFileSync(file, 'utf8') +
    '\\n})',
  { filename: file, cachedData },
);
// Build time only: scripts/bundle.mjs runs a command with this set and keeps the code it compiled.
const cacheOut = process.env.PODGATE_BUNDLE_CODE_CACHE_OUT;
if (cacheOut) process.on('exit', () => require('node:fs').writeFileSync(cacheOut, script.createCachedData()));
const mod = { exports: {} };
script
  .runInThisContext()
  .call(mod.exports, mod.exports, createRequire(file), mod, file, __dirname, pathToFileURL(file).href);
`;

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
};
const result = await build({
  ...common,
  entryPoints: { 'podgate-main': join(root, 'src', 'cli.ts') },
  outdir,
  outExtension: { '.js': '.cjs' },
  external: EXTERNAL,
  // the loader passes the file's URL: the sources find their templates and packages from it
  define: { 'import.meta.url': '__podgateImportMetaUrl' },
  // import() becomes require() (see the loader); a stray one left would fail only when it runs, so the
  // build checks below that none is left
  supported: { 'dynamic-import': false },
  sourcemap: 'linked',
  metafile: true,
  plugins: [lazyCommanderChildProcess, precompiledTemplates, yamlChunk],
});
await build({
  ...common,
  stdin: { contents: "module.exports = require('yaml');", resolveDir: root },
  outfile: join(outdir, YAML_CHUNK),
});
writeFileSync(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
const main = join(outdir, 'podgate-main.cjs');
// src/cli.ts's #! line: kept as a comment of the same length, so the source map's lines stay right,
// since the loader wraps the file in a function where #! is a syntax error.
const mainSource = readFileSync(main, 'utf8');
if (/[^\w$.]import\(/.test(mainSource.replace(/^#!/, '')))
  throw new Error(`${main}: an import() is left (it fails in a cached script); only require() may load`);
writeFileSync(main, mainSource.replace(/^#!/, '//'));
// Everything here is CommonJS (the package itself is "type": "module"); Node stops looking for the type
// at the nearest package.json.
writeFileSync(join(outdir, 'package.json'), '{ "type": "commonjs" }\n');
const entry = join(outdir, 'podgate.js');
writeFileSync(entry, LOADER);
chmodSync(entry, 0o755);

/**
 * The code cache: made by a warm-up `cert list` on a new data dir (run as the image and `bin` run it, with
 * this process's NODE_OPTIONS: V8 accepts a cache only under the flags it was made with), so it holds
 * the functions start-up and the common commands compile. Written to a temp file, renamed into place.
 */
const warm = mkdtempSync(join(tmpdir(), 'podgate-bundle-cache-'));
try {
  const out = join(warm, 'podgate-main.cache');
  const r = spawnSync(process.execPath, [entry, '--data-dir', join(warm, 'data'), 'cert', 'list'], {
    env: {
      PATH: process.env.PATH ?? '',
      ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}),
      PODGATE_BUNDLE_CODE_CACHE_OUT: out,
      PODGATE_LOG_LEVEL: 'error',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (r.status !== 0) throw new Error(`code cache warm-up (cert list) failed: ${r.stderr}`);
  copyFileSync(out, join(outdir, 'podgate-main.cache.tmp'));
  renameSync(join(outdir, 'podgate-main.cache.tmp'), join(outdir, 'podgate-main.cache'));
} finally {
  rmSync(warm, { recursive: true, force: true });
}
