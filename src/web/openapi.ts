import './zod-openapi.js';
import {
  OpenAPIRegistry,
  OpenApiGeneratorV31,
  type ResponseConfig,
  type RouteConfig,
} from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { API_OPERATIONS, type ApiOperation, type ApiResponse } from './api-operations.js';
import { errorSchema } from './api-schemas.js';

/** The OpenAPI document's own type, as the generator returns it. */
export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** `/api/v1/devices/:id` → `/api/v1/devices/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:(\w+)/g, '{$1}');
}

function pathParams(path: string): string[] {
  return [...path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
}

function response(r: ApiResponse): ResponseConfig {
  const content: NonNullable<ResponseConfig['content']> = {};
  if (r.json) content['application/json'] = { schema: r.json };
  for (const [type, schema] of Object.entries(r.other ?? {})) content[type] = { schema };
  return {
    description: r.description,
    ...(Object.keys(content).length ? { content } : {}),
    ...(r.headers
      ? {
          headers: Object.fromEntries(
            Object.entries(r.headers).map(([name, description]) => [
              name,
              { description, schema: { type: 'string' as const } },
            ]),
          ),
        }
      : {}),
  };
}

const errorRef = (name: string) => ({ $ref: `#/components/responses/${name}` });

/** The error answers an operation can give, by what it takes and who may call it. */
function errorResponses(method: string, path: string, op: ApiOperation): RouteConfig['responses'] {
  const out: RouteConfig['responses'] = {};
  const takesInput = op.query || op.body || op.otherBodies || pathParams(path).length > 0;
  if (takesInput) out[400] = errorRef('BadRequest');
  if (op.auth !== 'public') out[401] = errorRef('Unauthorized');
  if (op.auth === 'admin' || (op.auth === 'user' && !SAFE.has(method))) out[403] = errorRef('Forbidden');
  if (pathParams(path).length > 0) out[404] = errorRef('NotFound');
  out.default = errorRef('Error');
  return out;
}

function security(method: string, auth: ApiOperation['auth']): RouteConfig['security'] {
  if (auth === 'public') return [];
  const session: Record<string, string[]> = SAFE.has(method)
    ? { sessionCookie: [] }
    : { sessionCookie: [], csrfHeader: [] };
  return [session, { bearerToken: [] }];
}

function route(key: string, op: ApiOperation): RouteConfig {
  const [method, path] = key.split(' ') as [string, string];
  const names = pathParams(path);
  const missing = names.filter((n) => op.params?.[n] === undefined);
  if (missing.length) throw new Error(`${key}: describe path parameter(s) ${missing.join(', ')}`);
  const params = names.length
    ? z.object(Object.fromEntries(names.map((n) => [n, z.string().describe(op.params![n]!)])))
    : undefined;
  const bodies: Record<string, { schema: z.ZodTypeAny }> = {};
  if (op.body) bodies['application/json'] = { schema: op.body };
  for (const [type, schema] of Object.entries(op.otherBodies ?? {})) bodies[type] = { schema };
  const roles = op.auth === 'admin' ? ' Administrators only.' : '';
  return {
    method: method.toLowerCase() as RouteConfig['method'],
    path: openApiPath(path),
    operationId: operationId(method, path),
    summary: op.summary,
    ...(op.description || roles ? { description: `${op.description ?? ''}${roles}`.trim() } : {}),
    tags: [op.tag],
    security: security(method, op.auth),
    'x-podgate-auth': op.auth,
    request: {
      ...(params ? { params } : {}),
      ...(op.query ? { query: op.query } : {}),
      ...(Object.keys(bodies).length ? { body: { required: !!op.body, content: bodies } } : {}),
    },
    responses: {
      ...Object.fromEntries(Object.entries(op.responses).map(([s, r]) => [s, response(r)])),
      ...errorResponses(method, path, op),
    },
  };
}

/** `GET /api/v1/devices/:id` → `getDevicesById` (stable names for generated clients). */
export function operationId(method: string, path: string): string {
  const words = path
    .replace(/^\/api\/v1\//, '')
    .split(/[/.-]/)
    .filter(Boolean)
    .map((w) => (w.startsWith(':') ? `by-${w.slice(1)}` : w))
    .flatMap((w) => w.split('-'));
  return [method.toLowerCase(), ...words.map((w) => w[0]!.toUpperCase() + w.slice(1))].join('');
}

function build(version: string): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'sessionCookie', {
    type: 'apiKey',
    in: 'cookie',
    name: 'podgate_sid',
    description:
      'The session from POST /api/v1/login (`__Host-podgate_sid` when the request came over HTTPS). ' +
      'Every method other than GET, HEAD and OPTIONS also needs the CSRF header.',
  });
  registry.registerComponent('securitySchemes', 'csrfHeader', {
    type: 'apiKey',
    in: 'header',
    name: 'X-CSRF-Token',
    description: 'The csrfToken of the session (from POST /api/v1/login or GET /api/v1/me).',
  });
  registry.registerComponent('securitySchemes', 'bearerToken', {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API token (`podgate token create`, the API tokens page, POST /api/v1/tokens): ' +
      '`Authorization: Bearer <secret>`. No CSRF header needed.',
  });
  registry.register('Error', errorSchema);
  const errors: Record<string, string> = {
    BadRequest: 'bad input: `field` names the request field at fault; nothing was changed',
    Unauthorized: 'not signed in, or the token is unknown, expired or its owner disabled',
    Forbidden: 'administrators only, or the CSRF header is missing or wrong',
    NotFound: 'no such object (someone else’s device looks exactly like an unknown one)',
    Error: 'any other failure, same shape (409 conflict, 429 with Retry-After, 503 not connected, 500)',
  };
  for (const [name, description] of Object.entries(errors))
    registry.registerComponent('responses', name, {
      description,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    });
  for (const [key, op] of Object.entries(API_OPERATIONS)) registry.registerPath(route(key, op));
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'podgate API',
      version,
      description:
        'The JSON API of the podgate web app: the same powers as its pages. Errors always have the shape ' +
        '`{"error": {"code", "message", "field"?, "requestId"}}`. Lists are paged with `limit` and `cursor`.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
  });
}

let cached: { version: string; doc: OpenApiDocument } | undefined;

/** The OpenAPI 3.1 document of `/api/v1`, built once from API_OPERATIONS. */
export function openApiDocument(version = '0.0.0'): OpenApiDocument {
  if (cached?.version !== version) cached = { version, doc: build(version) };
  return cached.doc;
}
