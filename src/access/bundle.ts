import { z } from 'zod';
import { BadRequest } from '../lib/errors.js';
import { isIpv4 } from './elements.js';
import type { AccessBundle } from './types.js';

/**
 * Shape check of a published AccessBundle (`access.json`, in a file or in the `podgate-access` Secret),
 * before an enforcement point acts on it. Pure. Throws a BadRequest naming the first bad field; the
 * caller keeps the bundle in force.
 */
const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be a podgate name');
const ipv4 = z.string().refine(isIpv4, 'must be an IPv4 address');
const port = z.number().int().min(0).max(65535);
const selector = z
  .object({
    matchLabels: z.record(z.string(), z.string()).optional(),
    matchExpressions: z
      .array(
        z.object({
          key: z.string(),
          operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
          values: z.array(z.string()).optional(),
        }),
      )
      .optional(),
  })
  .passthrough();
const destination = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('namespace'),
    names: z.array(z.string()).optional(),
    selector: selector.optional(),
  }),
  z.object({
    kind: z.literal('service'),
    namespace: z.string(),
    name: z.string().optional(),
    selector: selector.optional(),
  }),
  z.object({ kind: z.literal('pod'), namespace: z.string(), selector }),
  z.object({ kind: z.literal('cidr'), cidr: z.string() }),
]);
const bundle = z.object({
  version: z.number().int().min(0),
  mode: z.enum(['open', 'enforce']),
  clients: z.array(z.object({ commonName: name, address: ipv4 })),
  rules: z.array(
    z.object({
      name,
      clients: z.array(ipv4),
      destinations: z.array(destination),
      protocol: z.enum(['tcp', 'udp', 'icmp', 'any']),
      ports: z.array(
        z.object({ from: port, to: port }).refine((p) => p.from <= p.to, 'from must not be above to'),
      ),
    }),
  ),
  generatedAt: z.string(),
});

export function parseAccessBundle(value: unknown): AccessBundle {
  const r = bundle.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = ['bundle', ...issue.path].join('.');
    throw new BadRequest(`access bundle: ${field}: ${issue.message}`, field);
  }
  const b = r.data as AccessBundle;
  const seen = new Set<string>();
  b.rules.forEach((rule, i) => {
    if (seen.has(rule.name))
      throw new BadRequest(
        `access bundle: bundle.rules.${i}.name: duplicate rule "${rule.name}"`,
        `bundle.rules.${i}.name`,
      );
    seen.add(rule.name);
  });
  const cns = new Set<string>();
  b.clients.forEach((c, i) => {
    if (cns.has(c.commonName))
      throw new BadRequest(
        `access bundle: bundle.clients.${i}.commonName: duplicate "${c.commonName}"`,
        `bundle.clients.${i}.commonName`,
      );
    cns.add(c.commonName);
  });
  return b;
}

/** Parses the text of `access.json` (JSON, then {@link parseAccessBundle}). */
export function parseAccessBundleText(text: string): AccessBundle {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BadRequest('access bundle is not JSON', 'bundle', err);
  }
  return parseAccessBundle(v);
}
