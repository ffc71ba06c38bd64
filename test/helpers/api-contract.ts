/**
 * Checks real `/api/v1` answers against the OpenAPI document with a JSON Schema 2020-12 validator
 * (Ajv2020 + ajv-formats; OpenAPI 3.1 schemas are 2020-12). `ApiContract.check` finds the operation by
 * method and path template, the response by status (else `default`), and validates the body of JSON
 * answers; an undocumented status or media type is a violation too.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type express from 'express';
import { openApiDocument, type OpenApiDocument } from '../../src/web/openapi.js';

// ajv-formats is CommonJS with `exports.default`: under NodeNext the default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

interface Operation {
  responses: Record<string, { $ref?: string; content?: Record<string, unknown> }>;
}

export interface Checked {
  /** `GET /api/v1/devices/{id}` (template) */
  operation: string;
  status: number;
}

/** One OpenAPI document compiled for checking answers; build it once per suite (compiling is the cost). */
export class ApiContract {
  readonly doc: OpenApiDocument;
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly templates: { method: string; template: string; re: RegExp; literal: number }[] = [];

  constructor(doc: OpenApiDocument = openApiDocument()) {
    this.doc = doc;
    // strict off only because the document (paths, info…) is registered whole so that its internal
    // `#/components/schemas/…` references resolve; each schema still compiles as 2020-12
    this.ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats(this.ajv);
    this.ajv.addSchema(doc as object, 'openapi');
    for (const [template, item] of Object.entries(doc.paths ?? {})) {
      const re = new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`);
      const literal = template.replace(/\{\w+\}/g, '').length;
      for (const method of Object.keys(item as object))
        this.templates.push({ method: method.toUpperCase(), template, re, literal });
    }
    // literal segments win: POST /devices/import-link before POST /devices/{id}
    this.templates.sort((a, b) => b.literal - a.literal);
  }

  /** The documented operation for a request, or undefined. */
  find(method: string, path: string): { method: string; template: string } | undefined {
    return this.templates.find((t) => t.method === method.toUpperCase() && t.re.test(path));
  }

  /**
   * Problems with one answer (empty when it matches the document). `body` is the parsed JSON for
   * JSON answers and ignored otherwise.
   */
  check(
    method: string,
    path: string,
    status: number,
    contentType: string | undefined,
    body: unknown,
  ): string[] {
    const op = this.find(method, path);
    const where = `${method.toUpperCase()} ${path} → ${status}`;
    if (!op) return status === 404 ? [] : [`${where}: no such operation in the document`];
    const operation = (this.doc.paths as Record<string, Record<string, Operation>>)[op.template]![
      op.method.toLowerCase()
    ]!;
    const key = operation.responses[String(status)] ? String(status) : 'default';
    let res = operation.responses[key];
    if (!res) return [`${where}: status not documented`];
    let pointer = `#/paths/${escape(op.template)}/${op.method.toLowerCase()}/responses/${key}`;
    if (res.$ref) {
      pointer = res.$ref;
      res = (this.doc.components?.responses as Record<string, typeof res>)[res.$ref.split('/').pop()!]!;
    }
    const type = (contentType ?? '').split(';')[0]!.trim();
    if (!res.content) return type === '' ? [] : [`${where}: a body (${type}) where none is documented`];
    if (!res.content[type]) return [`${where}: media type "${type}" not documented`];
    if (type !== 'application/json') return [];
    const ref = `openapi${pointer}/content/${escape(type)}/schema`;
    let validate = this.validators.get(ref);
    if (!validate) {
      validate = this.ajv.compile({ $ref: ref });
      this.validators.set(ref, validate);
    }
    if (validate(body)) return [];
    return (validate.errors ?? []).map((e) => `${where}: ${e.instancePath || '(body)'} ${e.message ?? ''}`);
  }
}

function escape(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

let shared: ApiContract | undefined;
/** One contract for the whole mocha run. */
export function apiContract(): ApiContract {
  shared ??= new ApiContract();
  return shared;
}

/** Every mismatch any watched app gave in this process (test/integration/web/helpers.ts fails the run on it). */
export const allViolations: string[] = [];

/**
 * Watches every `/api/v1` answer an express app gives (through any client: supertest, fetch) and
 * checks it against the document. `violations` lists what did not match; `checked` what was checked.
 */
export function watchApi(
  app: express.Express,
  contract = apiContract(),
): {
  violations: string[];
  checked: Checked[];
} {
  const out = { violations: [] as string[], checked: [] as Checked[] };
  const appWithHandle = app as unknown as {
    handle: (req: express.Request, res: express.Response, next?: unknown) => void;
  };
  const handle = appWithHandle.handle.bind(app);
  appWithHandle.handle = (req, res, next) => {
    const path = (req.url ?? '').split('?')[0]!;
    if (path.startsWith('/api/v1/')) capture(req.method, path, res, contract, out);
    handle(req, res, next);
  };
  return out;
}

function capture(
  method: string,
  path: string,
  res: express.Response,
  contract: ApiContract,
  out: { violations: string[]; checked: Checked[] },
): void {
  const chunks: Buffer[] = [];
  const write = res.write.bind(res) as (...a: unknown[]) => boolean;
  const end = res.end.bind(res) as (...a: unknown[]) => express.Response;
  const keep = (chunk: unknown, encoding: unknown): void => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    chunks.push(
      Buffer.isBuffer(chunk)
        ? chunk
        : Buffer.from(chunk as string, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'),
    );
  };
  (res as unknown as { write: unknown }).write = (chunk: unknown, encoding?: unknown, cb?: unknown) => {
    keep(chunk, encoding);
    return write(chunk, encoding, cb);
  };
  (res as unknown as { end: unknown }).end = (chunk?: unknown, encoding?: unknown, cb?: unknown) => {
    keep(chunk, encoding);
    const status = res.statusCode;
    const type = res.getHeader('content-type') as string | undefined;
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    if (method !== 'HEAD' && type?.startsWith('application/json')) {
      try {
        body = JSON.parse(text);
      } catch {
        const problem = `${method} ${path} → ${status}: JSON answer does not parse`;
        out.violations.push(problem);
        allViolations.push(problem);
      }
    }
    const problems = contract.check(method, path, status, text.length ? type : undefined, body);
    out.violations.push(...problems);
    allViolations.push(...problems);
    const op = contract.find(method, path);
    if (op) out.checked.push({ operation: `${op.method} ${op.template}`, status });
    return end(chunk, encoding, cb);
  };
}
