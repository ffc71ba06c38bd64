import { z } from 'zod';
import { BadRequest } from '../lib/errors.js';
import { NAME_PATTERN, NAME_RULE } from '../lib/names.js';
import { parseCidr } from '../lib/cidr.js';
import type { AccessRule } from './types.js';

/**
 * Validation of access rules as people write them (rules.yaml, the API, the admin page): one zod
 * schema whose every error names the field by its path, e.g. `rules[2].destinations[0].selector.matchLabels`.
 * Pure: no I/O. The shapes are exactly those of ./types.ts, so what `access export` writes reads back.
 */

const name = z
  .string()
  .regex(NAME_PATTERN, NAME_RULE.replace(/^must/, 'must'))
  .refine((v) => v !== '.' && v !== '..', 'must not be "." or ".."');
/** Single sign-on groups are whatever the provider calls them ("Team A", "/org/dev"): printable text. */
const groupName = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  .regex(/^[^\x00-\x1f\x7f]+$/, 'must not contain control characters');
/** DNS-1123 label: what the API server accepts for namespace and Service names. */
const dnsLabel = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
    'must be a DNS-1123 label (at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit)',
  );
/** Kubernetes label keys: optional DNS-subdomain prefix + "/" + a name of at most 63 characters. */
const labelKey = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
    'must be a Kubernetes label key ([prefix/]name, name at most 63 characters of letters, digits, "-", "_", ".")',
  );
const labelValue = z
  .string()
  .regex(
    /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/,
    'must be a Kubernetes label value (at most 63 letters, digits, "-", "_", ".", starting and ending with a letter or digit)',
  );

const matchLabels = z.record(labelValue).superRefine((labels, ctx) => {
  for (const key of Object.keys(labels)) {
    const r = labelKey.safeParse(key);
    if (!r.success)
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `key "${key}" ${r.error.issues[0]!.message}` });
  }
});

const expression = z
  .object({
    key: labelKey,
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: z.array(labelValue).optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    const n = e.values?.length ?? 0;
    if ((e.operator === 'In' || e.operator === 'NotIn') && n === 0)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['values'],
        message: `must not be empty with ${e.operator}`,
      });
    if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && n > 0)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['values'],
        message: `must be absent with ${e.operator}`,
      });
  });

const selector = z
  .object({ matchLabels: matchLabels.optional(), matchExpressions: z.array(expression).optional() })
  .strict();

/** An IPv4 or IPv6 range (dual stack: each family is matched in its own nft sets). */
const cidr = z.string().superRefine((value, ctx) => {
  try {
    parseCidr('cidr', value);
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message.replace(/^cidr: /, '') });
  }
});

const subject = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('user'), name }).strict(),
  z.object({ kind: z.literal('group'), name: groupName }).strict(),
  z.object({ kind: z.literal('gateway'), name }).strict(),
  z.object({ kind: z.literal('everyone') }).strict(),
]);

const destination = z
  .discriminatedUnion('kind', [
    z
      .object({
        kind: z.literal('namespace'),
        names: z.array(dnsLabel).min(1).optional(),
        selector: selector.optional(),
      })
      .strict(),
    z
      .object({
        kind: z.literal('service'),
        namespace: dnsLabel,
        name: dnsLabel.optional(),
        selector: selector.optional(),
      })
      .strict(),
    z.object({ kind: z.literal('pod'), namespace: dnsLabel, selector }).strict(),
    z.object({ kind: z.literal('cidr'), cidr }).strict(),
  ])
  .superRefine((d, ctx) => {
    if (d.kind === 'namespace' && (d.names === undefined) === (d.selector === undefined))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['names'],
        message: 'a namespace destination takes either names or selector (exactly one)',
      });
    if (d.kind === 'service' && (d.name === undefined) === (d.selector === undefined))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['name'],
        message: 'a service destination takes either name or selector (exactly one)',
      });
  });

const portRange = z
  .object({ from: z.number().int().min(1).max(65535), to: z.number().int().min(1).max(65535) })
  .strict()
  .refine((p) => p.from <= p.to, { message: 'from must be <= to', path: ['from'] });

export const ruleSchema = z
  .object({
    name,
    description: z.string().max(1024).optional(),
    subjects: z.array(subject).min(1, 'must name at least one subject'),
    destinations: z.array(destination).min(1, 'must name at least one destination'),
    protocol: z.enum(['tcp', 'udp', 'icmp', 'any']).optional(),
    ports: z.array(portRange).min(1, 'must not be empty (leave it out for every port)').optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.ports && r.protocol !== 'tcp' && r.protocol !== 'udp')
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['ports'],
        message: `ports need protocol tcp or udp (protocol is ${r.protocol ?? 'any (the default)'})`,
      });
  });

export const rulesDocumentSchema = z
  .object({ rules: z.array(ruleSchema) })
  .strict()
  .superRefine((doc, ctx) => {
    const seen = new Map<string, number>();
    doc.rules.forEach((r, i) => {
      const first = seen.get(r.name);
      if (first !== undefined)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['rules', i, 'name'],
          message: `"${r.name}" is already the name of rules[${first}]`,
        });
      else seen.set(r.name, i);
    });
  });

/** `rules[2].destinations[0].selector.matchLabels` from zod's path array. */
export function fieldPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out || '(document)';
}

/** A 400 naming the first bad field (and listing up to 10). */
function refusal(error: z.ZodError, prefix: (string | number)[] = []): BadRequest {
  const issues = error.issues.slice(0, 10).map((i) => `${fieldPath([...prefix, ...i.path])}: ${i.message}`);
  const more = error.issues.length > 10 ? ` (and ${error.issues.length - 10} more)` : '';
  return new BadRequest(issues.join('; ') + more, fieldPath([...prefix, ...error.issues[0]!.path]));
}

/** Validates a whole rules document (`{ rules: [...] }`); throws a 400 naming the field. */
export function parseRulesDocument(input: unknown): AccessRule[] {
  const r = rulesDocumentSchema.safeParse(input);
  if (!r.success) throw refusal(r.error);
  return r.data.rules as AccessRule[];
}

/** Validates one rule; throws a 400 naming the field (under `rule`). */
export function parseRule(input: unknown): AccessRule {
  const r = ruleSchema.safeParse(input);
  if (!r.success) throw refusal(r.error, ['rule']);
  return r.data as AccessRule;
}
