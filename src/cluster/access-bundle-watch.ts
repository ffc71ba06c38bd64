/**
 * The agent's access-bundle source in cluster mode: list + watch of the `podgate-access` Secret (key
 * `access.json`, written by the manager) on the same loop as the CRL Secret. Each bundle is checked
 * (access/bundle.ts) before it is handed over; a malformed one, or one whose
 * version is not above the last handed over, is logged and dropped: the enforcer keeps its last good
 * sets (fail closed).
 */
import { parseAccessBundleText } from '../access/bundle.js';
import type { AccessBundle } from '../access/types.js';
import { logger } from '../lib/logger.js';
import type { KubeApi, KubeObject } from './kube-api.js';
import { NamedSecretWatch } from './secret-watch-source.js';
import { ACCESS_SECRET_KEYS, OBJECT_NAMES } from './pod-layout.js';

const log = logger.child({ module: 'cluster.access-bundle' });

/**
 * The bundle in a `podgate-access` Secret, or undefined when it holds none. Throws naming the first bad
 * field (access/bundle.ts, the same check `server run` applies to its file).
 */
export function accessBundleFromSecret(secret: KubeObject): AccessBundle | undefined {
  const raw = (secret.data as Record<string, string> | undefined)?.[ACCESS_SECRET_KEYS.bundle];
  if (!raw) return undefined;
  return parseAccessBundleText(Buffer.from(raw, 'base64').toString('utf8'));
}

export interface AccessBundleWatchOptions {
  kube: KubeApi;
  namespace: string;
  onBundle: (bundle: AccessBundle) => Promise<unknown> | void;
  /** A bundle that could not be read (the enforcer keeps its last good state and says so). */
  onError?: (err: unknown) => void;
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
        let bundle: AccessBundle | undefined;
        try {
          bundle = accessBundleFromSecret(secret);
        } catch (err) {
          o.onError?.(err);
          throw err;
        }
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
