import { Router } from 'express';
import { API_OPERATIONS } from './api-operations.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
export const API_PREFIX = '/api/v1';

/** `METHOD /api/v1/path` as API_OPERATIONS keys it, or undefined for a path outside the API. */
export function operationKey(method: string, fullPath: string): string | undefined {
  const path = fullPath.length > 1 ? fullPath.replace(/\/+$/, '') : fullPath;
  if (path !== API_PREFIX && !path.startsWith(`${API_PREFIX}/`)) return undefined;
  return `${method.toUpperCase()} ${path}`;
}

/**
 * An express Router whose `get/post/put/patch/delete` refuse (at start-up, when the route is
 * registered) an `/api/v1` route that has no entry in API_OPERATIONS, so the OpenAPI document cannot
 * miss a route. `prefix` is where the router is mounted (`/api/v1` for apiRouter, '' for routers
 * that register full paths); page routes outside `/api/v1` pass through unchecked.
 */
export function documentedRouter(prefix = ''): Router {
  const r = Router();
  for (const method of METHODS) {
    const register = r[method].bind(r) as (...args: unknown[]) => Router;
    (r as unknown as Record<string, unknown>)[method] = (path: unknown, ...handlers: unknown[]) => {
      for (const p of Array.isArray(path) ? (path as unknown[]) : [path]) {
        if (typeof p !== 'string') throw new Error(`${prefix}: API routes are registered by path strings`);
        const key = operationKey(method, prefix + p);
        if (key !== undefined && !Object.hasOwn(API_OPERATIONS, key))
          throw new Error(`${key} is not described in src/web/api-operations.ts (the OpenAPI document)`);
      }
      return register(path, ...handlers);
    };
  }
  return r;
}
