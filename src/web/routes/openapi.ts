import type { Router } from 'express';
import { PODGATE_VERSION } from '../../services/backup.js';
import { documentedRouter } from '../api-router.js';
import { openApiDocument } from '../openapi.js';

/**
 * `GET /api/v1/openapi.json`: the API's OpenAPI 3.1 document, without sign-in (it describes the API and
 * holds no data or secrets; docs/api.md says why). Mounted before authentication.
 */
export function openApiRouter(): Router {
  const r = documentedRouter();
  r.get('/api/v1/openapi.json', (_req, res) => {
    // revalidated each time (ETag), so a client sees a new release's document at once
    res.set('Cache-Control', 'no-cache').json(openApiDocument(PODGATE_VERSION));
  });
  return r;
}
