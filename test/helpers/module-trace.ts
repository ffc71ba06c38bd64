/**
 * Preload (`node --import dist/test/helpers/module-trace.js …`) that records every module a process
 * loads into the file named by PODGATE_TEST_MODULE_TRACE, one path or URL a line, written at exit:
 * - ES modules and packages imported from ES modules (express, the Kubernetes client, ssh2 …) through a
 *   module resolve hook (./module-trace-hooks.ts, registered here), which sees every resolved URL;
 * - CommonJS modules (required by packages, or through createRequire) from the CommonJS cache.
 * Test-only: the CLI knows nothing of it. Used by test/integration/cli/startup-modules.test.ts.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const file = process.env.PODGATE_TEST_MODULE_TRACE;
if (file) {
  register(new URL('./module-trace-hooks.js', import.meta.url), { data: { file } });
  const cache = createRequire(import.meta.url).cache;
  process.on('exit', () => {
    const ids = Object.keys(cache);
    if (ids.length > 0) appendFileSync(file, ids.map((id) => `cjs:${id}\n`).join(''));
  });
}
