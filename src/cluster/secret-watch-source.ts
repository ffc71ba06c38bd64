/**
 * The agent's bundle sources in cluster mode: list + watch of one Secret by name (`podgate-crl`, and
 * `podgate-access` in access-bundle-watch.ts) on the shared loop of list-watch.ts (bookmarks, clean
 * re-watch at the server's deadline, re-list on 410 Gone or a half-open connection, backoff on errors).
 * Each new value is parsed and handed over in order; a value equal to the last one (a re-list, a
 * bookmark, an unrelated change of the Secret) is not handed over again.
 */
import { parseBundle } from '../openvpn/local-source.js';
import type { RevocationBundle } from '../openvpn/revocation-bundle.js';
import { logger } from '../lib/logger.js';
import type { KubeApi, KubeObject, WatchEventType } from './kube-api.js';
import { ListWatch, RESYNC_GRACE_MS } from './list-watch.js';
import { CRL_SECRET_KEYS } from './pod-layout.js';

const log = logger.child({ module: 'cluster.watch' });

export { RESYNC_GRACE_MS };

export interface SecretWatchOptions {
  kube: KubeApi;
  namespace: string;
  name: string;
  onBundle: (bundle: RevocationBundle) => Promise<unknown>;
  /** First retry delay after an error; doubles up to 10 s. Default 500 ms. */
  retryMs?: number;
  /**
   * Each watch asks the server to end it after this long (timeoutSeconds; the server sends a bookmark
   * shortly before). When that end has not arrived RESYNC_GRACE_MS later, the connection went half-open
   * (no FIN, no data) and would leave the agent deaf to revocations: the source drops it and re-lists.
   * Default 5 min.
   */
  resyncMs?: number;
}

/** The bundle inside a podgate-crl Secret, or undefined when it has none. Throws on a malformed one. */
export function bundleFromSecret(secret: KubeObject): RevocationBundle | undefined {
  const data = secret.data as Record<string, string> | undefined;
  const raw = data?.[CRL_SECRET_KEYS.bundle];
  if (!raw) return undefined;
  const text = Buffer.from(raw, 'base64').toString('utf8');
  const crl = data?.[CRL_SECRET_KEYS.crl];
  if (!crl) return parseBundle(text);
  // The CRL is stored once, under crl.pem; revocations.json carries the rest (older Secrets had both).
  let fields: unknown;
  try {
    fields = JSON.parse(text);
  } catch {
    return parseBundle(text); // its error names the problem
  }
  return parseBundle(
    JSON.stringify({ ...(fields as object), crlPem: Buffer.from(crl, 'base64').toString('utf8') }),
  );
}

/** What a NamedSecretWatch needs to know about the Secret it follows. */
export interface NamedSecretWatchOptions<T> {
  kube: KubeApi;
  namespace: string;
  name: string;
  /** The text that identifies a value (unchanged text = nothing new); '' = the Secret holds none. */
  fingerprint: (secret: KubeObject) => string;
  /** The value; undefined to skip it. Throws on a malformed one (logged, not handed over). */
  parse: (secret: KubeObject) => T | undefined;
  onValue: (value: T) => Promise<unknown>;
  retryMs?: number;
  resyncMs?: number;
  /** For logs: what the Secret carries. */
  label: string;
}

/** One Secret, by name, followed through list + watch; its parsed values handed over one at a time. */
export class NamedSecretWatch<T> {
  private readonly loop: ListWatch;
  private lastText = '';
  private delivery: Promise<void> = Promise.resolve();
  private delivered = 0;

  constructor(private readonly o: NamedSecretWatchOptions<T>) {
    this.loop = new ListWatch({
      kube: o.kube,
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: o.namespace,
      fieldSelector: `metadata.name=${o.name}`,
      retryMs: o.retryMs,
      resyncMs: o.resyncMs,
      onList: (items) => {
        const secret = items.find((i) => i.metadata.name === o.name);
        if (secret) this.deliver(secret);
      },
      onChange: (type, obj) => {
        if (type !== 'DELETED') this.deliver(obj);
      },
    });
  }

  /** Lists once (delivering the current value) and starts watching. Rejects if the first list fails. */
  async start(): Promise<void> {
    await this.loop.start();
    await this.delivery;
  }

  /** Like start() but never rejects: the first list is retried with backoff (API server unreachable). */
  begin(): void {
    this.loop.begin();
  }

  stop(): void {
    this.loop.stop();
  }

  /** The resourceVersion the next watch continues from (the last list, event or bookmark). */
  get resourceVersion(): string {
    return this.loop.resourceVersion;
  }

  /** Lists and watches started, bookmarks, 410 Gone answers, errors, values handed over. */
  get stats(): ListWatch['stats'] & { delivered: number } {
    return { ...this.loop.stats, delivered: this.delivered };
  }

  /** Resolves when every value seen so far has been handed over. */
  idle(): Promise<void> {
    return this.delivery;
  }

  private deliver(secret: KubeObject): void {
    const text = this.o.fingerprint(secret);
    if (text === '' || text === this.lastText) return; // re-lists and bookmarks repeat what we have
    this.lastText = text;
    this.delivery = this.delivery.then(async () => {
      try {
        const value = this.o.parse(secret);
        if (value === undefined) return;
        this.delivered++;
        await this.o.onValue(value);
      } catch (err) {
        log.error({ err, secret: secret.metadata.name }, `${this.o.label} from the Secret not applied`);
      }
    });
  }
}

/** The agent's CRL source: the `podgate-crl` Secret's revocation bundle. */
export class SecretWatchSource extends NamedSecretWatch<RevocationBundle> {
  constructor(o: SecretWatchOptions) {
    super({
      kube: o.kube,
      namespace: o.namespace,
      name: o.name,
      retryMs: o.retryMs,
      resyncMs: o.resyncMs,
      label: 'revocation bundle',
      fingerprint: (secret) =>
        (secret.data as Record<string, string> | undefined)?.[CRL_SECRET_KEYS.bundle] ?? '',
      parse: bundleFromSecret,
      onValue: o.onBundle,
    });
  }
}

export type { WatchEventType };
