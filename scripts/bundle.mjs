#!/usr/bin/env node
// Bundles the CLI with esbuild into dist/bundle/podgate.js: the file `bin`, `npm start` and the image run.
// One file holds start-up and the common commands (config, store, PKI, cert/user/crl); the heavy parts
// (Kubernetes client, express and the web stack, ssh2, openid-client, handlebars) stay outside it and are
// imported only by the commands that need them (dynamic import at the command). Code of ours that only
// those commands use goes to chunks/ (code splitting), so `cert list` never parses it.
// `tsc` still builds dist/src and dist/test for the tests and the types; this script only adds the bundle.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
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
];

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await build({
  entryPoints: { podgate: join(root, 'src', 'cli.ts') },
  outdir,
  bundle: true,
  splitting: true,
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
});
writeFileSync(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
const entry = join(outdir, 'podgate.js');
chmodSync(entry, 0o755);
