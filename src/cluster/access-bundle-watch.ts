/**
 * The agent's access-bundle source in cluster mode: list + watch of the `podgate-access` Secret (key
 * `access.json`, written by the manager) on the same loop as the CRL Secret. Each bundle is checked
 * against the contract of access/types.ts before it is handed over; a malformed one, or one whose
 * version is not above the last handed over, is logged and dropped: the enforcer keeps its last good
 * sets (fail closed).
 */
import { z } from 'zod';
import type { AccessBundle } from '../access/types.js';
import { logger } from '../lib/logger.js';
import type { KubeApi, KubeObject } from './kube-api.js';
import { NamedSecretWatch } from './secret-watch-source.js';
import { ACCESS_SECRET_KEYS, OBJECT_NAMES } from './pod-layout.js';

const log = logger.child({ module: 'cluster.access-bundle' });

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/);
const labels = z.record(z.string(), z.string());
const selector = z
  .object({
    matchLabels: labels.optional(),
    matchExpressions: z
      .array(
        z.object({
          key: z.string().min(1),
          operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
          values: z.array(z.string()).optional(),
        }),
      )
      .optional(),
  })
  .strict();
const destination = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('namespace'),
    names: z.array(z.string()).optional(),
    selector: selector.optional(),
  }),
  z.object({
    kind: z.literal('service'),
    namespace: z.string().min(1),
    name: z.string().optional(),
    selector: selector.optional(),
  }),
  z.object({ kind: z.literal('pod'), namespace: z.string().min(1), selector }),
  z.object({ kind: z.literal('cidr'), cidr: z.string().min(1) }),
]);
const ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/);
const port = z.number().int().min(1).max(65535);

/** The AccessBundle contract as data arrives (unknown keys are kept out). */
export const accessBundleSchema = z.object({
  version: z.number().int().nonnegative(),
  mode: z.enum(['open', 'enforce']),
  clients: z.array(z.object({ commonName: z.string().min(1), address: ipv4 })),
  rules: z.array(
    z.object({
      name,
      clients: z.array(ipv4),
      destinations: z.array(destination),
      protocol: z.enum(['tcp', 'udp', 'icmp', 'any']),
      ports: z.array(z.object({ from: port, to: port }).refine((r) => r.from <= r.to, 'from > to')),
    }),
  ),
  generatedAt: z.string().min(1),
});

/**
 * The bundle in a `podgate-access` Secret, or undefined when it holds none. Throws naming the first bad
 * field by path.
 */
export function accessBundleFromSecret(secret: KubeObject): AccessBundle | undefined {
  const raw = (secret.data as Record<string, string> | undefined)?.[ACCESS_SECRET_KEYS.bundle];
  if (!raw) return undefined;
  return parseAccessBundle(Buffer.from(raw, 'base64').toString('utf8'));
}

/** `access.json` text → AccessBundle; throws naming the first bad field by path. */
export function parseAccessBundle(text: string): AccessBundle {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`access bundle: not JSON (${(err as Error).message})`);
  }
  const r = accessBundleSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`access bundle: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return r.data as AccessBundle;
}

export interface AccessBundleWatchOptions {
  kube: KubeApi;
  namespace: string;
  onBundle: (bundle: AccessBundle) => Promise<unknown> | void;
  retryMs?: number;
  resyncMs?: number;
}

/** The `podgate-access` Secret followed by name; bundles handed over in rising version order only. */
export class AccessBundleWatch {
  private readonly watch: NamedSecretWatch<AccessBundle>;
  private lastVersion = -1;

  constructor(o: AccessBundleWatchOptions) {
    this.watch = new NamedSecretWatch<AccessBundle>({
      kube: o.kube,
      namespace: o.namespace,
      name: OBJECT_NAMES.accessSecret,
      retryMs: o.retryMs,
      resyncMs: o.resyncMs,
      label: 'access bundle',
      fingerprint: (secret) =>
        (secret.data as Record<string, string> | undefined)?.[ACCESS_SECRET_KEYS.bundle] ?? '',
      parse: (secret) => {
        const bundle = accessBundleFromSecret(secret);
        if (!bundle) return undefined;
        if (bundle.version <= this.lastVersion) {
          log.warn({ version: bundle.version, inForce: this.lastVersion }, 'older access bundle ignored');
          return undefined;
        }
        this.lastVersion = bundle.version;
        return bundle;
      },
      onValue: async (bundle) => o.onBundle(bundle),
    });
  }

  /** The version of the last bundle handed over (-1 before the first). */
  get version(): number {
    return this.lastVersion;
  }

  /** Starts listing and watching; never rejects (an unreachable API server is retried with backoff). */
  begin(): void {
    this.watch.begin();
  }

  /** Lists once (handing over the current bundle) and watches. Rejects if the first list fails. */
  start(): Promise<void> {
    return this.watch.start();
  }

  stop(): void {
    this.watch.stop();
  }

  get stats(): NamedSecretWatch<AccessBundle>['stats'] {
    return this.watch.stats;
  }

  idle(): Promise<void> {
    return this.watch.idle();
  }
}
