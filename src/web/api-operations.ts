import { z, type AnyZodObject, type ZodTypeAny } from 'zod';
import { rulesDocumentSchema } from '../access/rule-schema.js';
import {
  accessRulesSchema,
  auditEntrySchema,
  caSchema,
  checkAnswerSchema,
  clusterViewSchema,
  crlSchema,
  deployStateSchema,
  deviceSchema,
  gatewaySchema,
  groupSchema,
  importLinkSchema,
  issuedSchema,
  liveSessionSchema,
  loginAnswerSchema,
  pageOf,
  reachersSchema,
  reachSchema,
  rulesDiffSchema,
  sessionHistorySchema,
  tokenSchema,
  userSchema,
} from './api-schemas.js';
import { pageQuery } from './pagination.js';
import {
  accessPutQuery,
  accessQuery,
  auditApiQuery,
  backupBody,
  certApiQuery,
  checkQuery,
  createDeviceBody,
  createTokenBody,
  createUserBody,
  deployBody,
  groupBody,
  importLinkBody,
  loginBody,
  memberBody,
  patchUserBody,
  renewDeviceBody,
  revokeBody,
  sessionHistoryQuery,
  tokenListQuery,
  whoQuery,
} from './validation.js';

/** Who may call: anyone, a signed-in user (session cookie or API token), or an administrator. */
export type ApiAuth = 'public' | 'user' | 'admin';

export interface ApiResponse {
  description: string;
  /** `application/json` body. */
  json?: ZodTypeAny;
  /** Other media types (a profile, YAML, a backup file): schema of the body as text or bytes. */
  other?: Record<string, ZodTypeAny>;
  /** Response headers worth knowing, by name: description. */
  headers?: Record<string, string>;
}

/**
 * One `/api/v1` operation: the zod schemas its handler validates with and what it answers. The key of
 * {@link API_OPERATIONS} is `METHOD /api/v1/path` exactly as express registers it (`:param`), and a
 * route registered through `documentedRouter` (api-router.ts) without an entry here stops the app
 * from starting; `test/integration/web/openapi-routes.test.ts` checks the other direction.
 */
export interface ApiOperation {
  summary: string;
  description?: string;
  tag: string;
  auth: ApiAuth;
  query?: AnyZodObject;
  /** `application/json` request body. */
  body?: ZodTypeAny;
  /** Other request media types, e.g. YAML as text. */
  otherBodies?: Record<string, ZodTypeAny>;
  /** Path parameters by name: description (every `:name` in the path must be here). */
  params?: Record<string, string>;
  responses: Record<number, ApiResponse>;
}

const PROFILE = 'application/x-openvpn-profile';
const text = z.string();
const profileHeaders = {
  'X-Certificate-Serial': 'serial (hex) of the certificate in the profile',
  'Content-Disposition': 'attachment; filename="<common name>.ovpn"',
};
const issuedAnswer: ApiResponse = {
  description:
    'the profile with its private key inline, sent once and never stored: `.ovpn` by default, JSON with `Accept: application/json`',
  json: issuedSchema,
  other: { [PROFILE]: text },
  headers: profileHeaders,
};
const noContent: ApiResponse = { description: 'done' };
const deviceId = { id: 'serial of one of your own devices (hex, as listed)' };
const groupName = { name: 'group name' };

export const API_OPERATIONS: Record<string, ApiOperation> = {
  'GET /api/v1/openapi.json': {
    summary: 'this API description (OpenAPI 3.1)',
    tag: 'meta',
    auth: 'public',
    responses: { 200: { description: 'the OpenAPI document', json: z.object({}).passthrough() } },
  },
  'POST /api/v1/login': {
    summary: 'sign in with a name and password: a session cookie and its CSRF token',
    description:
      'JSON only (415 otherwise); a browser Origin must be this site. Failures are throttled (429 with Retry-After).',
    tag: 'session',
    auth: 'public',
    body: loginBody,
    responses: { 200: { description: 'signed in; Set-Cookie holds the session', json: loginAnswerSchema } },
  },
  'POST /api/v1/logout': {
    summary: 'end this session',
    tag: 'session',
    auth: 'user',
    responses: { 204: noContent },
  },
  'GET /api/v1/me': {
    summary: 'who is calling (and, with a session, its CSRF token)',
    tag: 'session',
    auth: 'user',
    responses: {
      200: {
        description: 'the caller',
        json: z.object({ user: userSchema, csrfToken: z.string().optional() }).strict(),
      },
    },
  },
  'GET /api/v1/devices': {
    summary: 'your devices (client certificates), newest first',
    tag: 'devices',
    auth: 'user',
    query: pageQuery,
    responses: { 200: { description: 'a page of devices', json: pageOf(deviceSchema) } },
  },
  'POST /api/v1/devices': {
    summary: 'issue a device: a certificate named <you>.<name> and its profile',
    description:
      'The key is generated for this answer only, or stays on the device when a certificate request (`csr`) is sent.',
    tag: 'devices',
    auth: 'user',
    body: createDeviceBody,
    responses: { 201: issuedAnswer },
  },
  'POST /api/v1/devices/import-link': {
    summary: 'a one-use link (and QR code) that OpenVPN Connect imports a new device profile from',
    tag: 'devices',
    auth: 'user',
    body: importLinkBody,
    responses: { 201: { description: 'the link', json: importLinkSchema } },
  },
  'GET /api/v1/devices/:id': {
    summary: 'one of your devices',
    tag: 'devices',
    auth: 'user',
    params: deviceId,
    responses: { 200: { description: 'the device', json: z.object({ device: deviceSchema }).strict() } },
  },
  'DELETE /api/v1/devices/:id': {
    summary: 'revoke one of your devices (cessationOfOperation); its live sessions end',
    tag: 'devices',
    auth: 'user',
    params: deviceId,
    responses: {
      200: { description: 'the revoked device', json: z.object({ device: deviceSchema }).strict() },
    },
  },
  'POST /api/v1/devices/:id/renew': {
    summary: 'renew one of your devices: a new certificate and profile; the old one is revoked later',
    tag: 'devices',
    auth: 'user',
    params: deviceId,
    body: renewDeviceBody,
    responses: { 201: issuedAnswer },
  },
  'GET /api/v1/tokens': {
    summary: 'your API tokens (admins: `?all=1` for everyone’s); never the secret',
    tag: 'tokens',
    auth: 'user',
    query: pageQuery.merge(tokenListQuery),
    responses: { 200: { description: 'a page of tokens', json: pageOf(tokenSchema) } },
  },
  'POST /api/v1/tokens': {
    summary: 'create an API token; the secret is in this answer only',
    tag: 'tokens',
    auth: 'user',
    body: createTokenBody,
    responses: {
      201: {
        description: 'the token and its secret (send it as `Authorization: Bearer <secret>`)',
        json: z.object({ token: tokenSchema, secret: z.string() }).strict(),
      },
    },
  },
  'DELETE /api/v1/tokens/:id': {
    summary: 'delete one of your tokens (admins: anyone’s)',
    tag: 'tokens',
    auth: 'user',
    params: { id: 'token id (a number)' },
    responses: { 204: noContent },
  },
  'GET /api/v1/sessions/history': {
    summary: 'recorded VPN sessions, newest first: your own (admins: everyone’s, or `?user=`)',
    tag: 'sessions',
    auth: 'user',
    query: sessionHistoryQuery,
    responses: {
      200: {
        description: 'up to 1000 sessions',
        json: z.object({ items: z.array(sessionHistorySchema) }).strict(),
      },
    },
  },
  'GET /api/v1/certs': {
    summary: 'all certificates: search, filter, sort, page',
    tag: 'certificates',
    auth: 'admin',
    query: certApiQuery,
    responses: { 200: { description: 'a page of certificates', json: pageOf(deviceSchema) } },
  },
  'GET /api/v1/certs/:serial': {
    summary: 'one certificate',
    tag: 'certificates',
    auth: 'admin',
    params: { serial: 'serial (hex)' },
    responses: { 200: { description: 'the certificate', json: z.object({ cert: deviceSchema }).strict() } },
  },
  'POST /api/v1/certs/:serial/revoke': {
    summary: 'revoke a certificate: new CRL at once, its live sessions end',
    tag: 'certificates',
    auth: 'admin',
    params: { serial: 'serial (hex)' },
    body: revokeBody,
    responses: {
      200: { description: 'the revoked certificate', json: z.object({ cert: deviceSchema }).strict() },
    },
  },
  'GET /api/v1/users': {
    summary: 'users',
    tag: 'users',
    auth: 'admin',
    query: pageQuery,
    responses: { 200: { description: 'a page of users', json: pageOf(userSchema) } },
  },
  'POST /api/v1/users': {
    summary: 'create a user',
    tag: 'users',
    auth: 'admin',
    body: createUserBody,
    responses: { 201: { description: 'the user', json: z.object({ user: userSchema }).strict() } },
  },
  'PATCH /api/v1/users/:name': {
    summary: 'change a user’s role, or disable (revokes their certificates) / enable them',
    tag: 'users',
    auth: 'admin',
    params: { name: 'user name' },
    body: patchUserBody,
    responses: { 200: { description: 'the user', json: z.object({ user: userSchema }).strict() } },
  },
  'GET /api/v1/sessions': {
    summary: 'live VPN sessions (503 when no VPN server is connected)',
    tag: 'sessions',
    auth: 'admin',
    query: pageQuery,
    responses: { 200: { description: 'a page of sessions', json: pageOf(liveSessionSchema) } },
  },
  'POST /api/v1/sessions/:cid/disconnect': {
    summary: 'end a live session (its certificate stays valid: the client may reconnect)',
    tag: 'sessions',
    auth: 'admin',
    params: { cid: 'client id from the session list' },
    responses: { 204: noContent },
  },
  'DELETE /api/v1/sessions/:cid': {
    summary: 'end a live session (same as POST …/disconnect)',
    tag: 'sessions',
    auth: 'admin',
    params: { cid: 'client id from the session list' },
    responses: { 204: noContent },
  },
  'GET /api/v1/audit': {
    summary: 'the audit log, newest first',
    tag: 'admin',
    auth: 'admin',
    query: auditApiQuery,
    responses: { 200: { description: 'a page of entries', json: pageOf(auditEntrySchema) } },
  },
  'GET /api/v1/ca': {
    summary: 'the CA in force and, during a rotation, the previous one and who still uses it',
    tag: 'admin',
    auth: 'admin',
    responses: { 200: { description: 'CA status', json: caSchema } },
  },
  'GET /api/v1/crl': {
    summary: 'the current CRL: number, dates, revoked count',
    tag: 'admin',
    auth: 'admin',
    responses: { 200: { description: 'CRL status', json: crlSchema } },
  },
  'GET /api/v1/gateways': {
    summary: 'office gateways',
    tag: 'admin',
    auth: 'admin',
    query: pageQuery,
    responses: { 200: { description: 'a page of gateways', json: pageOf(gatewaySchema) } },
  },
  'POST /api/v1/backup': {
    summary: 'download an encrypted backup of the data dir (audited)',
    tag: 'admin',
    auth: 'admin',
    body: backupBody,
    responses: {
      200: {
        description: 'the backup file, encrypted with the passphrase',
        other: { 'application/octet-stream': z.string() },
        headers: { 'X-Backup-Sha256': 'sha256 (hex) of the file' },
      },
    },
  },
  'GET /api/v1/cluster': {
    summary: 'the cluster as last discovered, and the deploy in progress',
    tag: 'cluster',
    auth: 'admin',
    responses: {
      200: { description: 'cluster view', json: clusterViewSchema.extend({ deploy: deployStateSchema }) },
    },
  },
  'POST /api/v1/cluster/discover': {
    summary: 'discover pod and service ranges, DNS and nodes now',
    tag: 'cluster',
    auth: 'admin',
    responses: {
      200: {
        description: 'the discovery and the cluster view',
        json: clusterViewSchema.extend({ discovery: z.object({}).passthrough() }),
      },
    },
  },
  'GET /api/v1/cluster/status': {
    summary: 'live state in the cluster: pods, endpoints, the agent’s CRL number',
    tag: 'cluster',
    auth: 'admin',
    responses: {
      200: {
        description: 'status',
        json: z.object({ status: z.object({}).passthrough(), lines: z.array(z.string()) }).strict(),
      },
    },
  },
  'GET /api/v1/cluster/manifests': {
    summary: 'the deploy manifests as YAML (they hold the server key: audited)',
    tag: 'cluster',
    auth: 'admin',
    responses: { 200: { description: 'manifests', other: { 'application/yaml': text } } },
  },
  'GET /api/v1/deploy': {
    summary: 'the deploy in progress or last finished',
    tag: 'cluster',
    auth: 'admin',
    responses: { 200: { description: 'deploy state', json: deployStateSchema } },
  },
  'POST /api/v1/deploy': {
    summary: 'start a deploy into the cluster (one at a time); poll GET /api/v1/deploy',
    tag: 'cluster',
    auth: 'admin',
    body: deployBody,
    responses: { 202: { description: 'started', json: deployStateSchema } },
  },
  'GET /api/v1/access': {
    summary: 'the access rules and mode (`?format=yaml`: as YAML, what PUT takes back)',
    tag: 'access',
    auth: 'admin',
    query: accessQuery,
    responses: {
      200: { description: 'the rules', json: accessRulesSchema, other: { 'application/yaml': text } },
    },
  },
  'PUT /api/v1/access': {
    summary: 'replace the access rules (`?dryRun=true`: only show what would change)',
    tag: 'access',
    auth: 'admin',
    query: accessPutQuery,
    body: rulesDocumentSchema,
    otherBodies: { 'application/yaml': text },
    responses: { 200: { description: 'what changed', json: rulesDiffSchema } },
  },
  'GET /api/v1/access/check': {
    summary: 'may this user reach this destination? (users: about themselves only)',
    tag: 'access',
    auth: 'user',
    query: checkQuery,
    responses: { 200: { description: 'the decision and the deciding rule', json: checkAnswerSchema } },
  },
  'GET /api/v1/access/who': {
    summary: 'who can reach this destination',
    tag: 'access',
    auth: 'admin',
    query: whoQuery,
    responses: { 200: { description: 'rules and their users and gateways', json: reachersSchema } },
  },
  'GET /api/v1/access/users/:name': {
    summary: 'what this user can reach',
    tag: 'access',
    auth: 'admin',
    params: { name: 'user name' },
    responses: {
      200: {
        description: 'rules that bring the user in',
        json: z.object({ user: z.string(), items: z.array(reachSchema) }).strict(),
      },
    },
  },
  'GET /api/v1/access/mine': {
    summary: 'what you can reach',
    tag: 'access',
    auth: 'user',
    responses: {
      200: {
        description: 'the mode and the rules that bring you in',
        json: z.object({ mode: z.enum(['open', 'enforce']), items: z.array(reachSchema) }).strict(),
      },
    },
  },
  'GET /api/v1/groups': {
    summary: 'local groups',
    tag: 'access',
    auth: 'admin',
    responses: { 200: { description: 'groups', json: z.object({ items: z.array(groupSchema) }).strict() } },
  },
  'POST /api/v1/groups': {
    summary: 'create a local group',
    tag: 'access',
    auth: 'admin',
    body: groupBody,
    responses: { 201: { description: 'the group', json: z.object({ group: groupSchema }).strict() } },
  },
  'GET /api/v1/groups/:name': {
    summary: 'one group',
    tag: 'access',
    auth: 'admin',
    params: groupName,
    responses: { 200: { description: 'the group', json: z.object({ group: groupSchema }).strict() } },
  },
  'DELETE /api/v1/groups/:name': {
    summary: 'delete a group',
    tag: 'access',
    auth: 'admin',
    params: groupName,
    responses: { 204: noContent },
  },
  'POST /api/v1/groups/:name/members': {
    summary: 'add a user to a group',
    tag: 'access',
    auth: 'admin',
    params: groupName,
    body: memberBody,
    responses: { 201: { description: 'the group', json: z.object({ group: groupSchema }).strict() } },
  },
  'DELETE /api/v1/groups/:name/members/:user': {
    summary: 'remove a user from a group',
    tag: 'access',
    auth: 'admin',
    params: { ...groupName, user: 'user name' },
    responses: { 200: { description: 'the group', json: z.object({ group: groupSchema }).strict() } },
  },
};
