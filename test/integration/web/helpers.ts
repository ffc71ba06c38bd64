import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import type express from 'express';
import { loadConfig } from '../../../src/config/load.js';
import { openContext, type AppContext } from '../../../src/services/context.js';
import { createApp, type AppDeps } from '../../../src/web/app.js';
import { logger, setLogLevel } from '../../../src/lib/logger.js';
import assert from 'node:assert/strict';
import { allViolations, watchApi, type Checked } from '../../helpers/api-contract.js';

export const PASSWORD = 'correct horse battery';

/*
 * Every /api/v1 answer of every suite built on webFixture is checked against the OpenAPI document. A
 * root hook (this module is loaded by mocha with the spec files) fails the run after the last suite when
 * one did not match, listing the requests; failing inside a suite's own cleanup would skip the rest of it.
 */
if (typeof after === 'function')
  after('every /api/v1 answer matched the OpenAPI document', () => {
    assert.deepEqual(allViolations, [], 'answers that do not match the OpenAPI document');
  });

export interface WebFixture {
  dir: string;
  ctx: AppContext;
  app: express.Express;
  /** Mutable clock for timeout tests. */
  clock: { now: Date };
  /**
   * Every /api/v1 answer the app gave, checked against the OpenAPI document (test/helpers/api-contract.ts);
   * a mismatch fails the run (root hook above).
   */
  api: { violations: string[]; checked: Checked[] };
  close(): void;
}

/**
 * A real app on a real SQLite file in a temp data dir, with users admin, alice and bob. `extra` may be
 * a function of the opened context (a real ClusterService needs its store, server and revocation).
 */
export async function webFixture(
  extra: Partial<AppDeps> | ((ctx: AppContext) => Partial<AppDeps>) = {},
  configOverrides: Record<string, unknown> = {},
): Promise<WebFixture> {
  // Keep test output readable: the services log every issue and revoke at info.
  const level = logger.level;
  setLogLevel('error');
  const dir = mkdtempSync(join(tmpdir(), 'podgate-web-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      'vpn.endpoints': ['vpn.example.test'],
      logLevel: 'silent',
      ...configOverrides,
    },
  });
  const clock = { now: new Date() };
  const now = (): Date => clock.now;
  const ctx = await openContext(config, { now });
  await ctx.users.create({ actor: 'test', name: 'admin', role: 'admin', password: PASSWORD });
  await ctx.users.create({ actor: 'test', name: 'alice', role: 'user', password: PASSWORD });
  await ctx.users.create({ actor: 'test', name: 'bob', role: 'user', password: PASSWORD });
  const app = createApp({ ctx, now, ...(typeof extra === 'function' ? extra(ctx) : extra) });
  const api = watchApi(app);
  return {
    dir,
    ctx,
    app,
    clock,
    api,
    close() {
      ctx.close();
      rmSync(dir, { recursive: true, force: true });
      setLogLevel(level);
    },
  };
}

export interface Client {
  agent: ReturnType<typeof request.agent>;
  csrf: string;
}

/** Signs in through the JSON API; the agent keeps the session cookie. */
export async function signIn(app: express.Express, name: string, password = PASSWORD): Promise<Client> {
  const agent = request.agent(app);
  const res = await agent.post('/api/v1/login').send({ name, password }).expect(200);
  return { agent, csrf: (res.body as { csrfToken: string }).csrfToken };
}

/** Extracts a hidden `_csrf` value from an HTML page. */
export function csrfFromHtml(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no _csrf field in page');
  return m[1]!;
}
