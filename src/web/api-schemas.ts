import './zod-openapi.js';
import { z } from 'zod';
import { ruleSchema } from '../access/rule-schema.js';
import { CERT_KINDS, REVOCATION_REASONS } from '../lib/cert-vocabulary.js';

/**
 * What `/api/v1` answers, as zod schemas: the source of the response half of the OpenAPI document
 * (`api-operations.ts`). The handlers build these objects (userView, deviceView, …); the integration
 * suites validate every real answer against the document, so a field added or renamed here or there
 * without the other fails a test. Objects are strict where the API promises an exact shape, open
 * (`passthrough`) where the answer carries a nested report whose fields belong to another module.
 */

/** A date as JSON carries it (`Date.prototype.toJSON`: ISO 8601 in UTC). */
const time = z.string().datetime();

/**
 * An enum or null. Not `.nullable()`: the generator (zod-to-openapi 7) writes that as
 * `type: [string, null]` with an `enum` that lacks null, which refuses null (caught by the contract tests).
 */
function enumOrNull<T extends [string, ...string[]]>(values: T) {
  return z.union([z.enum(values), z.null()]);
}

/** The one error shape of every API failure (the AppError renderer in error-handler.ts). */
export const errorSchema = z
  .object({
    error: z
      .object({
        code: z.string().describe('stable machine-readable code, e.g. bad_request, not_found, conflict'),
        message: z.string().describe('safe to show; names the field for bad input'),
        field: z.string().optional().describe('the request field at fault (bad input)'),
        requestId: z.string().describe('also in X-Request-Id; finds the request in the log'),
      })
      .strict(),
  })
  .strict()
  .openapi('Error');

/** Every list answer (pagination.ts): this page, the total, and the cursor of the next page. */
export function pageOf<T extends z.ZodTypeAny>(item: T) {
  return z
    .object({
      items: z.array(item),
      total: z.number().int().min(0),
      nextCursor: z.string().nullable().describe('pass back as ?cursor= for the next page; null on the last'),
    })
    .strict();
}

export const userSchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    role: z.enum(['admin', 'user']),
    disabled: z.boolean(),
    createdAt: time,
  })
  .strict()
  .openapi('User');

/** A certificate as the API shows it (actions.ts deviceView); never a key. */
export const deviceSchema = z
  .object({
    id: z.string().describe('the serial (hex); the device id in /devices/{id}'),
    serial: z.string(),
    name: z.string(),
    commonName: z.string(),
    owner: z.string().nullable(),
    kind: z.enum(CERT_KINDS),
    keyType: z.string(),
    createdAt: time,
    notAfter: time,
    status: z.enum(['valid', 'revoked', 'expired']),
    revokedAt: time.nullable(),
    revocationReason: enumOrNull([...REVOCATION_REASONS]),
    lastSeenAt: time.nullable(),
    renewedBy: z.string().nullable(),
    supersedeAt: time.nullable(),
    keyFromCsr: z.boolean(),
  })
  .strict()
  .openapi('Device');

/** A device issued or renewed with `Accept: application/json`: the profile once, in the answer. */
export const issuedSchema = z
  .object({ device: deviceSchema, filename: z.string(), profile: z.string() })
  .strict()
  .openapi('IssuedDevice');

export const tokenSchema = z
  .object({
    id: z.number().int(),
    user: z.string(),
    name: z.string(),
    createdAt: time,
    lastUsedAt: time.nullable(),
    expiresAt: time.nullable(),
    expired: z.boolean(),
  })
  .strict()
  .openapi('ApiToken');

export const liveSessionSchema = z
  .object({
    cid: z.string().describe('client id: the handle for disconnect'),
    commonName: z.string(),
    owner: z.string().nullable(),
    realAddress: z.string(),
    virtualAddress: z.string(),
    bytesIn: z.number(),
    bytesOut: z.number(),
    connectedSince: time,
  })
  .strict()
  .openapi('LiveSession');

export const sessionHistorySchema = z
  .object({
    id: z.number().int(),
    replica: z.string(),
    clientId: z.number().int(),
    commonName: z.string(),
    serial: z.string().nullable(),
    userName: z.string().nullable(),
    deviceName: z.string().nullable(),
    realAddress: z.string(),
    virtualAddress: z.string(),
    startedAt: time,
    lastSeenAt: time,
    endedAt: time.nullable(),
    endReason: enumOrNull(['revoked', 'disabled', 'server-restart', 'server-stop', 'ended']),
    bytesIn: z.number(),
    bytesOut: z.number(),
  })
  .strict()
  .openapi('SessionRecord');

export const auditEntrySchema = z
  .object({
    id: z.number().int(),
    time,
    actor: z.string(),
    action: z.string(),
    target: z.string(),
    result: z.enum(['ok', 'error', 'pending']),
    details: z.record(z.unknown()),
  })
  .strict()
  .openapi('AuditEntry');

const caSummary = z
  .object({
    commonName: z.string(),
    keyId: z.string(),
    notAfter: time,
    daysLeft: z.number().int(),
    expiringSoon: z.boolean(),
  })
  .strict();

export const caSchema = z
  .object({
    current: caSummary,
    previous: caSummary.optional(),
    onPreviousCa: z.array(
      z.object({ serial: z.string(), commonName: z.string(), owner: z.string().nullable() }).strict(),
    ),
    warnings: z.array(z.string()),
  })
  .strict()
  .openapi('CaStatus');

export const crlSchema = z
  .object({
    number: z.number().int().nullable(),
    thisUpdate: time.nullable(),
    nextUpdate: time.nullable(),
    revoked: z.number().int(),
    expiresInDays: z.number().int().nullable(),
  })
  .strict()
  .openapi('CrlStatus');

export const gatewaySchema = z
  .object({
    name: z.string(),
    target: z.string(),
    certSerial: z.string().nullable(),
    status: z.string(),
    details: z.record(z.unknown()),
    updatedAt: time,
  })
  .strict()
  .openapi('Gateway');

export const deployStateSchema = z
  .object({
    state: z.enum(['idle', 'running', 'done', 'failed']),
    startedAt: time.nullable(),
    finishedAt: time.nullable(),
    startedBy: z.string().nullable(),
    events: z.array(z.object({ time, message: z.string() }).strict()),
    error: z.string().nullable(),
  })
  .strict()
  .openapi('DeployState');

/**
 * The last discovery (cluster module's DiscoveryResult under `raw`: its fields are that module's). No
 * component name: the answers extend it, and the generator writes an extended component as `allOf`,
 * which a strict object cannot satisfy.
 */
export const clusterViewSchema = z
  .object({
    connected: z.boolean(),
    namespace: z.string(),
    rows: z.array(z.object({ name: z.string(), value: z.string(), source: z.string() }).strict()),
    warnings: z.array(z.string()),
    at: z.string().optional(),
    raw: z.object({}).passthrough().nullable(),
  })
  .strict();

export const groupSchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    description: z.string(),
    createdAt: time,
    members: z.array(z.string()),
  })
  .strict()
  .openapi('Group');

export const accessRulesSchema = z
  .object({
    mode: z.enum(['open', 'enforce']),
    source: z.enum(['config', 'data dir', 'default']),
    version: z.number().int(),
    rules: z.array(ruleSchema),
  })
  .strict();

export const rulesDiffSchema = z
  .object({
    dryRun: z.boolean(),
    create: z.array(z.string()),
    update: z.array(z.string()),
    delete: z.array(z.string()),
    unchanged: z.array(z.string()),
    version: z.number().int(),
  })
  .strict();

export const checkAnswerSchema = z
  .object({
    user: z.string(),
    destination: z.string(),
    decision: z.enum(['allow', 'deny']),
    rule: z.string().optional(),
    covers: z.string().optional(),
    limits: z.string().optional(),
    mode: z.enum(['open', 'enforce']),
    evaluatedWith: z.enum(['cluster', 'names']),
    notes: z.array(z.string()),
  })
  .strict()
  .openapi('AccessCheck');

export const reachSchema = z
  .object({
    rule: z.string(),
    description: z.string().optional(),
    destinations: z.array(z.string()),
    limits: z.string(),
    via: z.string(),
  })
  .strict()
  .openapi('Reach');

export const reachersSchema = z
  .object({
    reachers: z.array(
      z
        .object({
          rule: z.string(),
          covers: z.string(),
          limits: z.string(),
          users: z.array(z.string()),
          gateways: z.array(z.string()),
        })
        .strict(),
    ),
    evaluatedWith: z.enum(['cluster', 'names']),
  })
  .strict();

export const importLinkSchema = z
  .object({
    link: z.string().describe('openvpn://import-profile/… for OpenVPN Connect'),
    url: z.string().url().describe('the one-use https URL the link carries'),
    expiresAt: time,
    deviceName: z.string(),
    qr: z.string().describe('the link as a QR code (data: URL of a PNG)'),
  })
  .strict()
  .openapi('ImportLink');

export const loginAnswerSchema = z.object({ user: userSchema, csrfToken: z.string() }).strict();
