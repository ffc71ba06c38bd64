import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { openContext, type AppContext, type ContextDeps } from '../../src/services/context.js';
import { setLogLevel } from '../../src/lib/logger.js';

/**
 * A real context (real SQLite file, real CA) in `dir`, configured like a small cluster.
 * `overrides` are dotted config paths (e.g. { 'vpn.keyType': 'rsa-2048' }).
 */
export async function testContext(
  dir: string,
  overrides: Record<string, unknown> = {},
  deps: ContextDeps = {},
): Promise<AppContext> {
  setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'error');
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: join(dir, 'data'),
      'vpn.endpoints': ['172.18.12.21'],
      'vpn.routes.pods': ['10.244.0.0/16'],
      'vpn.routes.services': ['10.96.0.0/12'],
      ...overrides,
    },
  });
  return openContext(config, deps);
}
