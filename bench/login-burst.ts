import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { setLogLevel } from '../src/lib/logger.js';
import { openContext } from '../src/services/context.js';
import { startServer } from '../src/web/server.js';

/**
 * Sign-in throttle under a burst (issue 11, item 2): on a fresh server, 100 parallel
 * `POST /api/v1/login` for one account (99 wrong passwords, 1 right), then 100 parallel ones for 100
 * different accounts from the same address. Prints how many were evaluated (200/401) and how many
 * were refused before hashing (429). Run: `npm run build && node dist/bench/login-burst.js`.
 */
const PASSWORD = 'burst password 2026';

async function burst(
  url: string,
  bodies: { name: string; password: string }[],
): Promise<Record<number, number>> {
  const statuses = await Promise.all(
    bodies.map(async (b) => {
      const r = await fetch(`${url}/api/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
      await r.arrayBuffer();
      return r.status;
    }),
  );
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

async function fresh<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-burst-'));
  setLogLevel('silent');
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'vpn.endpoints': ['vpn.example.test'],
      'ca.keyType': 'ec-p384',
      logLevel: 'silent',
    },
  });
  const ctx = await openContext(config);
  try {
    await ctx.users.create({ actor: 'bench', name: 'alice', role: 'user', password: PASSWORD });
    const server = await startServer({ ctx, host: '127.0.0.1', port: 0 });
    try {
      return await fn(server.url);
    } finally {
      await server.close();
    }
  } finally {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const oneAccount = await fresh((url) =>
  burst(
    url,
    Array.from({ length: 100 }, (_, i) => ({
      name: 'alice',
      password: i === 50 ? PASSWORD : `wrong password ${i}`,
    })),
  ),
);
const manyAccounts = await fresh((url) =>
  burst(
    url,
    Array.from({ length: 100 }, (_, i) => ({ name: `ghost${i}`, password: 'wrong password!' })),
  ),
);
console.log(`one account, 100 parallel (99 wrong + 1 right): ${JSON.stringify(oneAccount)}`);
console.log(`100 accounts, one address, 100 parallel:        ${JSON.stringify(manyAccounts)}`);
