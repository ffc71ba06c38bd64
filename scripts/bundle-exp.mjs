#!/usr/bin/env node
// Bundles the CLI with esbuild into dist/bundle/podgate.js: the file `bin`, `npm start` and the image run.
// One file holds start-up and the common commands (config, store, PKI, cert/user/crl); the heavy parts
// (Kubernetes client, express and the web stack, ssh2, openid-client, handlebars) stay outside it and are
// imported only by the commands that need them (dynamic import at the command). Code of ours that only
// those commands use goes to chunks/ (code splitting), so `cert list` never parses it.
// `tsc` still builds dist/src and dist/test for the tests and the types; this script only adds the bundle.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = process.env.OUTDIR ?? join(root, 'dist', 'bundle');

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
  // neither never load them. (yaml is bundled in a chunk of its own: src/lib/yaml.ts.)
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

const cjsExternals = {
  name: 'cjs-externals',
  setup(b) {
    const ext = new RegExp('^(node:.*|' + EXTERNAL.map((e) => e.replace(/[/.]/g, (c) => '\\' + c).replace('\\/*', '/.*')).join('|') + ')$');
    b.onResolve({ filter: ext }, (args) => args.namespace === 'cjs-external' ? { path: args.path, external: true } : { path: args.path, namespace: 'cjs-external' });
    b.onLoad({ filter: /.*/, namespace: 'cjs-external' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await build({
  entryPoints: { podgate: join(root, 'src', 'cli.ts') },
  outdir,
  bundle: true,
  splitting: process.env.SPLIT !== "0",
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  external: EXTERNAL,
  // CommonJS packages bundled into ESM call require() for Node built-ins; give them one.
  banner: {
    js: "import { createRequire as __podgateCreateRequire } from 'node:module'; const require = __podgateCreateRequire(import.meta.url);",
  },
  sourcemap: 'linked',
  metafile: true,
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  plugins: [lazyCommanderChildProcess, precompiledTemplates, ...(process.env.CJSEXT==='1'?[cjsExternals]:[])],
});
writeFileSync(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
// Node looks for the nearest package.json to learn that a .js file is an ES module, for the entry and
// for every chunk it loads; one beside them ends the walk up the tree at once.
for (const dir of [outdir, join(outdir, 'chunks')]) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
}
const entry = join(outdir, 'podgate.js');
chmodSync(entry, 0o755);
