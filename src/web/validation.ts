import './zod-openapi.js';
import { z } from 'zod';
import { BadRequest } from '../lib/errors.js';
import { DEVICE_NAME_PATTERN, DEVICE_NAME_RULE, NAME_PATTERN, NAME_RULE } from '../lib/names.js';
import { REVOCATION_REASONS } from '../lib/cert-vocabulary.js';
import { limitField, pageQuery } from './pagination.js';

/**
 * Request input is checked here, at the edge, with zod. The first problem becomes a 400 that names
 * the field (`field` on the AppError, and in the message) and nothing is changed.
 */
export function parse<T extends z.ZodTypeAny>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data as z.infer<T>;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.') || 'body';
  const message =
    issue.code === 'invalid_type' && issue.received === 'undefined' ? 'is required' : issue.message;
  throw new BadRequest(`${field} ${message}`, field);
}

/** Names follow the one project rule (lib/names); the message states the rule. */
export const nameField = z
  .string({ required_error: 'is required', invalid_type_error: 'must be a string' })
  .refine((v) => NAME_PATTERN.test(v) && v !== '.' && v !== '..', { message: NAME_RULE })
  .openapi({ pattern: NAME_PATTERN.source, description: NAME_RULE });

export { REVOCATION_REASONS };

export const loginBody = z.object({
  name: z.string({ required_error: 'is required' }).min(1, 'is required').max(64, 'is too long'),
  password: z.string({ required_error: 'is required' }).min(1, 'is required').max(1024, 'is too long'),
});

const csrPem = z
  .string()
  .max(16_384, 'is too long')
  .transform((v) => v.trim())
  .refine(
    (v) =>
      v === '' ||
      /^-----BEGIN (NEW )?CERTIFICATE REQUEST-----[\s\S]+-----END (NEW )?CERTIFICATE REQUEST-----$/.test(v),
    {
      message: 'must be a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)',
    },
  );

/** Device names have no "." so that `<user>.<device>` names one pair only (lib/names). */
const deviceNameField = z
  .string({ required_error: 'is required', invalid_type_error: 'must be a string' })
  .refine((v) => DEVICE_NAME_PATTERN.test(v), { message: DEVICE_NAME_RULE })
  .openapi({ pattern: DEVICE_NAME_PATTERN.source, description: DEVICE_NAME_RULE });

export const createDeviceBody = z.object({
  name: deviceNameField,
  keyType: z.enum(['ec-p256', 'rsa-2048', 'rsa-3072']).or(z.literal('')).optional(),
  csr: csrPem.optional(),
});

/** `POST /devices/:id/renew`: a new certificate request (required for a device issued from one). */
export const renewDeviceBody = z.object({
  csr: csrPem.optional(),
});

export const revokeBody = z.object({
  reason: z
    .enum(REVOCATION_REASONS, {
      errorMap: () => ({ message: `must be one of ${REVOCATION_REASONS.join(', ')}` }),
    })
    .default('unspecified'),
});

export const createUserBody = z.object({
  name: nameField,
  role: z.enum(['admin', 'user']).default('user'),
  // Length, variety and the well-known list are checked by the one password rule in the service.
  password: z.string({ required_error: 'is required', invalid_type_error: 'must be a string' }),
});

export const patchUserBody = z
  .object({
    role: z.enum(['admin', 'user']).optional(),
    disabled: z.boolean({ invalid_type_error: 'must be true or false' }).optional(),
  })
  .refine((v) => v.role !== undefined || v.disabled !== undefined, {
    message: 'must set role or disabled',
    path: ['role'],
  });

/** Query string of the certificate table (all optional; empty strings mean "not set" for forms). */
export const certQuery = z.object({
  q: z.string().max(100, 'is too long').optional(),
  status: z.enum(['valid', 'revoked', '']).optional(),
  expiring: z.enum(['', '30', 'on']).optional(),
  sort: z.enum(['commonName', 'owner', 'notAfter', 'createdAt', 'status']).default('createdAt'),
  order: z.enum(['asc', 'desc']).default('desc'),
  page: z.coerce.number().int().min(1, 'must be 1 or more').max(100_000).default(1),
  perPage: z.coerce.number().int().min(1).max(200, 'must be at most 200').default(50),
  /** Keyset position from the previous page's next link (then `page` only numbers the page). */
  cursor: z.string().max(1000, 'is too long').optional(),
});

/**
 * `GET /api/v1/certs`: the table's filters and sort, paged by `limit` and `cursor` (pagination.ts).
 * `perPage` and `page` are the older names, still read when `limit` and `cursor` are absent.
 */
export const certApiQuery = certQuery.extend({
  limit: limitField.optional(),
  cursor: z.string().max(512, 'is too long').optional(),
});

/** `GET /api/v1/audit`: an action filter, paged by `limit` and `cursor`. */
export const auditApiQuery = pageQuery.extend({ action: z.string().max(64).optional() });

export const auditQuery = z.object({
  page: z.coerce.number().int().min(1, 'must be 1 or more').max(100_000).default(1),
  action: z.string().max(64).optional(),
});

export const importLinkBody = z.object({
  name: deviceNameField,
  keyType: z.enum(['ec-p256', 'rsa-2048', 'rsa-3072']).or(z.literal('')).optional(),
});

/** `POST /api/v1/tokens` (and the tokens page form, where `days` may be an empty field). */
export const createTokenBody = z.object({
  name: nameField,
  days: z.coerce
    .number({ invalid_type_error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(3650, 'must be at most 3650')
    .optional()
    .or(z.literal('').transform(() => undefined)),
});

/** `GET /api/v1/tokens?all=1`: an admin lists everyone's tokens. */
export const tokenListQuery = z.object({ all: z.enum(['0', '1', 'true', 'false']).optional() });

export const groupBody = z.object({
  name: nameField,
  description: z.string().max(1024, 'is too long').optional(),
});
export const memberBody = z.object({ user: nameField });
export const checkQuery = z.object({
  user: nameField,
  destination: z.string({ required_error: 'is required' }).min(1, 'is required').max(300, 'is too long'),
});
export const whoQuery = checkQuery.pick({ destination: true });

/*
 * Inputs a route still checks by hand (its own message and field), described here for the API
 * document only; each names the code that enforces it.
 */

/** `POST /api/v1/backup` (routes/backup.ts passphraseFrom, services/backup-format checkPassphrase). */
export const backupBody = z.object({ passphrase: z.string().min(12) });

/** `GET /api/v1/sessions/history` (routes/usage.ts: optUser, services/usage parseSince). */
export const sessionHistoryQuery = z.object({
  user: z.string().optional().describe('admins: one user; ignored for others (always themselves)'),
  since: z.string().optional().describe('a duration (7d, 12h, 30m) or an ISO date'),
});

/** `POST /api/v1/deploy` (routes/api.ts). */
export const deployBody = z.object({
  takeOver: z
    .boolean()
    .optional()
    .describe('replace a server another podgate manager (another CA) deployed in the namespace'),
});

/** `GET /api/v1/access` (routes/access.ts). */
export const accessQuery = z.object({ format: z.enum(['json', 'yaml']).optional() });

/** `PUT /api/v1/access` (routes/access.ts: true, 1 or on). */
export const accessPutQuery = z.object({ dryRun: z.enum(['true', '1', 'on', 'false', '0']).optional() });
