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
const deviceId = { id: 'serial of one of your own devices (hex, as listed)' };
const serial = { serial: 'serial (hex)' };
const userName = { name: 'user name' };
const cid = { cid: 'client id from the session list' };
const groupName = { name: 'group name' };

/** The usual answer: `status` with a JSON body. */
const answer = (description: string, json: ZodTypeAny, status = 200): Record<number, ApiResponse> => ({
  [status]: { description, json },
});
/** `{ <key>: schema }`, nothing else: the one-object answers (`{ device }`, `{ user }`, `{ group }`). */
const one = (key: string, schema: ZodTypeAny) => z.object({ [key]: schema }).strict();
/** `{ items: [...] }` without paging. */
const items = (schema: ZodTypeAny) => z.object({ items: z.array(schema) }).strict();
const noContent: Record<number, ApiResponse> = { 204: { description: 'done' } };

/** An operation as declared below: its tag and caller come from its section unless it says otherwise. */
type Declared = Omit<ApiOperation, 'tag' | 'auth'> & { auth?: ApiAuth };

/** One section of operations sharing a tag and (by default) who may call them. */
function section(tag: string, auth: ApiAuth, ops: Record<string, Declared>): Record<string, ApiOperation> {
  return Object.fromEntries(
    Object.entries(ops).map(([key, { auth: own, ...op }]) => [key, { ...op, tag, auth: own ?? auth }]),
  );
}

export const API_OPERATIONS: Record<string, ApiOperation> = {
  ...section('meta', 'public', {
    'GET /api/v1/openapi.json': {
      summary: 'this API description (OpenAPI 3.1)',
      responses: answer('the OpenAPI document', z.object({}).passthrough()),
    },
  }),
  ...section('session', 'user', {
    'POST /api/v1/login': {
      summary: 'sign in with a name and password: a session cookie and its CSRF token',
      description:
        'JSON only (415 otherwise); a browser Origin must be this site. Failures are throttled (429 with Retry-After).',
      auth: 'public',
      body: loginBody,
      responses: answer('signed in; Set-Cookie holds the session', loginAnswerSchema),
    },
    'POST /api/v1/logout': { summary: 'end this session', responses: noContent },
    'GET /api/v1/me': {
      summary: 'who is calling (and, with a session, its CSRF token)',
      responses: answer(
        'the caller',
        z.object({ user: userSchema, csrfToken: z.string().optional() }).strict(),
      ),
    },
  }),
  ...section('devices', 'user', {
    'GET /api/v1/devices': {
      summary: 'your devices (client certificates), newest first',
      query: pageQuery,
      responses: answer('a page of devices', pageOf(deviceSchema)),
    },
    'POST /api/v1/devices': {
      summary: 'issue a device: a certificate named <you>.<name> and its profile',
      description:
        'The key is generated for this answer only, or stays on the device when a certificate request (`csr`) is sent.',
      body: createDeviceBody,
      responses: { 201: issuedAnswer },
    },
    'POST /api/v1/devices/import-link': {
      summary: 'a one-use link (and QR code) that OpenVPN Connect imports a new device profile from',
      body: importLinkBody,
      responses: answer('the link', importLinkSchema, 201),
    },
    'GET /api/v1/devices/:id': {
      summary: 'one of your devices',
      params: deviceId,
      responses: answer('the device', one('device', deviceSchema)),
    },
    'DELETE /api/v1/devices/:id': {
      summary: 'revoke one of your devices (cessationOfOperation); its live sessions end',
      params: deviceId,
      responses: answer('the revoked device', one('device', deviceSchema)),
    },
    'POST /api/v1/devices/:id/renew': {
      summary: 'renew one of your devices: a new certificate and profile; the old one is revoked later',
      params: deviceId,
      body: renewDeviceBody,
      responses: { 201: issuedAnswer },
    },
  }),
  ...section('tokens', 'user', {
    'GET /api/v1/tokens': {
      summary: 'your API tokens (admins: `?all=1` for everyone’s); never the secret',
      query: pageQuery.merge(tokenListQuery),
      responses: answer('a page of tokens', pageOf(tokenSchema)),
    },
    'POST /api/v1/tokens': {
      summary: 'create an API token; the secret is in this answer only',
      body: createTokenBody,
      responses: answer(
        'the token and its secret (send it as `Authorization: Bearer <secret>`)',
        z.object({ token: tokenSchema, secret: z.string() }).strict(),
        201,
      ),
    },
    'DELETE /api/v1/tokens/:id': {
      summary: 'delete one of your tokens (admins: anyone’s)',
      params: { id: 'token id (a number)' },
      responses: noContent,
    },
  }),
  ...section('sessions', 'user', {
    'GET /api/v1/sessions/history': {
      summary: 'recorded VPN sessions, newest first: your own (admins: everyone’s, or `?user=`)',
      query: sessionHistoryQuery,
      responses: answer('up to 1000 sessions', items(sessionHistorySchema)),
    },
  }),
  ...section('certificates', 'admin', {
    'GET /api/v1/certs': {
      summary: 'all certificates: search, filter, sort, page',
      query: certApiQuery,
      responses: answer('a page of certificates', pageOf(deviceSchema)),
    },
    'GET /api/v1/certs/:serial': {
      summary: 'one certificate',
      params: serial,
      responses: answer('the certificate', one('cert', deviceSchema)),
    },
    'POST /api/v1/certs/:serial/revoke': {
      summary: 'revoke a certificate: new CRL at once, its live sessions end',
      params: serial,
      body: revokeBody,
      responses: answer('the revoked certificate', one('cert', deviceSchema)),
    },
  }),
  ...section('users', 'admin', {
    'GET /api/v1/users': {
      summary: 'users',
      query: pageQuery,
      responses: answer('a page of users', pageOf(userSchema)),
    },
    'POST /api/v1/users': {
      summary: 'create a user',
      body: createUserBody,
      responses: answer('the user', one('user', userSchema), 201),
    },
    'PATCH /api/v1/users/:name': {
      summary: 'change a user’s role, or disable (revokes their certificates) / enable them',
      params: userName,
      body: patchUserBody,
      responses: answer('the user', one('user', userSchema)),
    },
  }),
  ...section('sessions', 'admin', {
    'GET /api/v1/sessions': {
      summary: 'live VPN sessions (503 when no VPN server is connected)',
      query: pageQuery,
      responses: answer('a page of sessions', pageOf(liveSessionSchema)),
    },
    'POST /api/v1/sessions/:cid/disconnect': {
      summary: 'end a live session (its certificate stays valid: the client may reconnect)',
      params: cid,
      responses: noContent,
    },
    'DELETE /api/v1/sessions/:cid': {
      summary: 'end a live session (same as POST …/disconnect)',
      params: cid,
      responses: noContent,
    },
  }),
  ...section('admin', 'admin', {
    'GET /api/v1/audit': {
      summary: 'the audit log, newest first',
      query: auditApiQuery,
      responses: answer('a page of entries', pageOf(auditEntrySchema)),
    },
    'GET /api/v1/ca': {
      summary: 'the CA in force and, during a rotation, the previous one and who still uses it',
      responses: answer('CA status', caSchema),
    },
    'GET /api/v1/crl': {
      summary: 'the current CRL: number, dates, revoked count',
      responses: answer('CRL status', crlSchema),
    },
    'GET /api/v1/gateways': {
      summary: 'office gateways',
      query: pageQuery,
      responses: answer('a page of gateways', pageOf(gatewaySchema)),
    },
    'POST /api/v1/backup': {
      summary: 'download an encrypted backup of the data dir (audited)',
      body: backupBody,
      responses: {
        200: {
          description: 'the backup file, encrypted with the passphrase',
          other: { 'application/octet-stream': z.string() },
          headers: { 'X-Backup-Sha256': 'sha256 (hex) of the file' },
        },
      },
    },
  }),
  ...section('cluster', 'admin', {
    'GET /api/v1/cluster': {
      summary: 'the cluster as last discovered, and the deploy in progress',
      responses: answer('cluster view', clusterViewSchema.extend({ deploy: deployStateSchema })),
    },
    'POST /api/v1/cluster/discover': {
      summary: 'discover pod and service ranges, DNS and nodes now',
      responses: answer(
        'the discovery and the cluster view',
        clusterViewSchema.extend({ discovery: z.object({}).passthrough() }),
      ),
    },
    'GET /api/v1/cluster/status': {
      summary: 'live state in the cluster: pods, endpoints, the agent’s CRL number',
      responses: answer(
        'status',
        z.object({ status: z.object({}).passthrough(), lines: z.array(z.string()) }).strict(),
      ),
    },
    'GET /api/v1/cluster/manifests': {
      summary: 'the deploy manifests as YAML (they hold the server key: audited)',
      responses: { 200: { description: 'manifests', other: { 'application/yaml': text } } },
    },
    'GET /api/v1/deploy': {
      summary: 'the deploy in progress or last finished',
      responses: answer('deploy state', deployStateSchema),
    },
    'POST /api/v1/deploy': {
      summary: 'start a deploy into the cluster (one at a time); poll GET /api/v1/deploy',
      body: deployBody,
      responses: answer('started', deployStateSchema, 202),
    },
  }),
  ...section('access', 'admin', {
    'GET /api/v1/access': {
      summary: 'the access rules and mode (`?format=yaml`: as YAML, what PUT takes back)',
      query: accessQuery,
      responses: {
        200: { description: 'the rules', json: accessRulesSchema, other: { 'application/yaml': text } },
      },
    },
    'PUT /api/v1/access': {
      summary: 'replace the access rules (`?dryRun=true`: only show what would change)',
      query: accessPutQuery,
      body: rulesDocumentSchema,
      otherBodies: { 'application/yaml': text },
      responses: answer('what changed', rulesDiffSchema),
    },
    'GET /api/v1/access/check': {
      summary: 'may this user reach this destination? (users: about themselves only)',
      auth: 'user',
      query: checkQuery,
      responses: answer('the decision and the deciding rule', checkAnswerSchema),
    },
    'GET /api/v1/access/who': {
      summary: 'who can reach this destination',
      query: whoQuery,
      responses: answer('rules and their users and gateways', reachersSchema),
    },
    'GET /api/v1/access/users/:name': {
      summary: 'what this user can reach',
      params: userName,
      responses: answer(
        'rules that bring the user in',
        z.object({ user: z.string(), items: z.array(reachSchema) }).strict(),
      ),
    },
    'GET /api/v1/access/mine': {
      summary: 'what you can reach',
      auth: 'user',
      responses: answer(
        'the mode and the rules that bring you in',
        z.object({ mode: z.enum(['open', 'enforce']), items: z.array(reachSchema) }).strict(),
      ),
    },
    'GET /api/v1/groups': {
      summary: 'local groups',
      responses: answer('groups', items(groupSchema)),
    },
    'POST /api/v1/groups': {
      summary: 'create a local group',
      body: groupBody,
      responses: answer('the group', one('group', groupSchema), 201),
    },
    'GET /api/v1/groups/:name': {
      summary: 'one group',
      params: groupName,
      responses: answer('the group', one('group', groupSchema)),
    },
    'DELETE /api/v1/groups/:name': {
      summary: 'delete a group',
      params: groupName,
      responses: noContent,
    },
    'POST /api/v1/groups/:name/members': {
      summary: 'add a user to a group',
      params: groupName,
      body: memberBody,
      responses: answer('the group', one('group', groupSchema), 201),
    },
    'DELETE /api/v1/groups/:name/members/:user': {
      summary: 'remove a user from a group',
      params: { ...groupName, user: 'user name' },
      responses: answer('the group', one('group', groupSchema)),
    },
  }),
};
