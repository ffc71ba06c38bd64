import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import express from 'express';
import request from 'supertest';
import { API_OPERATIONS } from '../../../src/web/api-operations.js';
import { documentedRouter } from '../../../src/web/api-router.js';
import { openApiDocument, openApiPath } from '../../../src/web/openapi.js';
import { webFixture, type WebFixture } from './helpers.js';

interface Layer {
  rawPath?: string | string[];
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

function join(prefix: string, path: string): string {
  const p = `${prefix}${path === '/' ? '' : path}`;
  return p === '' ? '/' : p;
}

/** Every `METHOD /path` registered on the app, found by walking the router stack (mounted routers too). */
function registeredRoutes(stack: Layer[], prefix = ''): string[] {
  const out: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const method of Object.keys(layer.route.methods).filter((m) => METHODS.has(m)))
        for (const p of paths) out.push(`${method.toUpperCase()} ${join(prefix, p)}`);
    } else if (layer.handle.stack) {
      const mounts = Array.isArray(layer.rawPath) ? layer.rawPath : [layer.rawPath ?? '/'];
      for (const m of mounts)
        out.push(...registeredRoutes(layer.handle.stack, m === '/' ? prefix : prefix + m));
    }
  }
  return out;
}

describe('OpenAPI document: every /api/v1 route, and only those', function () {
  let f: WebFixture;
  let app: express.Express;
  before(async () => {
    f = await webFixture();
    app = f.app;
  });
  after(() => f?.close());

  it('the routes registered on the app under /api/v1 are exactly the operations of the document', () => {
    const stack = (app as unknown as { router: { stack: Layer[] } }).router.stack;
    const all = registeredRoutes(stack);
    // the walk must see the whole app, page routes too, or it proves nothing
    assert.ok(all.includes('GET /admin/certs') && all.includes('GET /healthz'), all.join('\n'));
    const api = [...new Set(all.filter((r) => / \/api\/v1\//.test(r)))].sort();
    const documented = Object.entries(openApiDocument().paths ?? {})
      .flatMap(([path, item]) => Object.keys(item as object).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const registered = api.map((r) => {
      const [m, p] = r.split(' ');
      return `${m} ${openApiPath(p!)}`;
    });
    assert.deepEqual(
      registered.filter((r) => !documented.includes(r)),
      [],
      'registered but not in the document',
    );
    assert.deepEqual(
      documented.filter((r) => !registered.includes(r)),
      [],
      'in the document but not registered',
    );
    assert.equal(registered.length, Object.keys(API_OPERATIONS).length);
    // a route added on a plain express Router (not documentedRouter) is seen by the walk as well
    app.use(
      '/api/v1/extra',
      express.Router().get('/thing', (_req, res) => res.end()),
    );
    assert.ok(registeredRoutes(stack).includes('GET /api/v1/extra/thing'));
  });

  it('an /api/v1 route without a description stops the app at registration; page routes pass', () => {
    const r = documentedRouter('/api/v1');
    assert.throws(
      () => r.get('/undocumented', (_req, res) => res.end()),
      /GET \/api\/v1\/undocumented is not described in src\/web\/api-operations\.ts/,
    );
    assert.throws(
      () => documentedRouter().post('/api/v1/me', (_req, res) => res.end()),
      /POST \/api\/v1\/me/,
    );
    documentedRouter().get('/admin/anything', (_req, res) => res.end());
    documentedRouter('/api/v1').get('/me', (_req, res) => res.end());
  });

  it('is served at /api/v1/openapi.json without sign-in, as OpenAPI 3.1 whose schemas are valid 2020-12', async () => {
    const res = await request(app).get('/api/v1/openapi.json').expect(200).expect('Content-Type', /json/);
    const doc = res.body as ReturnType<typeof openApiDocument>;
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(doc.paths, JSON.parse(JSON.stringify(openApiDocument().paths)));
    // even a broken bearer header does not matter here: the document is mounted before authentication
    await request(app).get('/api/v1/openapi.json').set('Authorization', 'Bearer x').expect(200);
    const ajv = new Ajv2020({ strict: false });
    const schemas: unknown[] = Object.values(doc.components?.schemas ?? {});
    for (const item of Object.values(doc.paths ?? {}))
      for (const op of Object.values(item as Record<string, Record<string, unknown>>)) {
        const body = op.requestBody as { content?: Record<string, { schema: unknown }> } | undefined;
        schemas.push(...Object.values(body?.content ?? {}).map((c) => c.schema));
        for (const r of Object.values(op.responses as Record<string, { content?: object }>))
          schemas.push(...Object.values(r.content ?? {}).map((c: { schema: unknown }) => c.schema));
        for (const p of (op.parameters as { schema: unknown }[] | undefined) ?? []) schemas.push(p.schema);
      }
    assert.ok(schemas.length > 80, `only ${schemas.length} schemas found`);
    for (const s of schemas) assert.ok(ajv.validateSchema(s as object), JSON.stringify(ajv.errors));
    // the session + CSRF and the bearer token, with the header names the app reads
    assert.deepEqual(Object.keys(doc.components?.securitySchemes ?? {}).sort(), [
      'bearerToken',
      'csrfHeader',
      'sessionCookie',
    ]);
    const post = doc.paths?.['/api/v1/devices']?.post;
    assert.deepEqual(post?.security, [{ sessionCookie: [], csrfHeader: [] }, { bearerToken: [] }]);
    assert.deepEqual(doc.paths?.['/api/v1/login']?.post?.security, []);
  });
});
