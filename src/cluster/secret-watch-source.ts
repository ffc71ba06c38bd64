/**
 * The agent's bundle source in cluster mode: list + watch of the `podgate-crl` Secret. Each new bundle
 * is handed to the agent core in order. The watch continues from the list's resourceVersion and asks
 * for bookmarks, which keep that version fresh while nothing happens to the Secret. Each watch asks the
 * server to end it after `resyncMs`; on that clean end the source watches again from the last version
 * seen. On 410 Gone (that version is older than the history the server still has, e.g. after an etcd
 * compaction) it re-lists at once; on any other error it re-lists with backoff.
 */
import { parseBundle } from '../openvpn/local-source.js';
import type { RevocationBundle } from '../openvpn/revocation-bundle.js';
import { logger } from '../lib/logger.js';
import type { KubeApi, KubeObject, WatchEventType, WatchHandle } from './kube-api.js';
import { CRL_SECRET_KEYS } from './pod-layout.js';

const log = logger.child({ module: 'cluster.watch' });

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

/** How long after the server's own watch deadline the source stops waiting for the stream's end. */
export const RESYNC_GRACE_MS = 5000;

/** A watch that failed with HTTP 410 (the client-node Watch puts the status on the error). */
function isGone(err: unknown): boolean {
  return (err as { statusCode?: number } | null)?.statusCode === 410;
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

export class SecretWatchSource {
  private handle: WatchHandle | undefined;
  private stopped = false;
  private lastRv = '';
  private lastBundleText = '';
  private delivery: Promise<void> = Promise.resolve();
  private retryDelay: number;
  private timer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** Bumped for every watch; callbacks of an older one are ignored. */
  private generation = 0;
  /** Counts for tests and logs: lists and watches started, bookmarks and 410 Gone answers seen. */
  readonly stats = { lists: 0, watches: 0, delivered: 0, bookmarks: 0, expired: 0 };

  constructor(private readonly o: SecretWatchOptions) {
    this.retryDelay = o.retryMs ?? 500;
  }

  /** Lists once (delivering the current bundle) and starts watching. Rejects if the first list fails. */
  async start(): Promise<void> {
    await this.list();
    await this.delivery;
    await this.watch();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.handle?.stop();
  }

  /** The resourceVersion the next watch continues from (the last list, event or bookmark). */
  get resourceVersion(): string {
    return this.lastRv;
  }

  /** Resolves when every bundle seen so far has been handed over. */
  idle(): Promise<void> {
    return this.delivery;
  }

  private async list(): Promise<void> {
    this.stats.lists++;
    const list = await this.o.kube.list('v1', 'Secret', {
      namespace: this.o.namespace,
      fieldSelector: `metadata.name=${this.o.name}`,
    });
    this.lastRv = list?.resourceVersion ?? '';
    const secret = list?.items[0];
    if (secret) this.deliver(secret);
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    this.stats.watches++;
    let expired = false;
    const generation = ++this.generation;
    const current = () => generation === this.generation && !this.stopped;
    const resyncMs = this.o.resyncMs ?? 300_000;
    this.handle = await this.o.kube.watchSecrets(
      this.o.namespace,
      {
        fieldSelector: `metadata.name=${this.o.name}`,
        resourceVersion: this.lastRv,
        timeoutSeconds: Math.max(1, Math.round(resyncMs / 1000)),
      },
      (type, obj) => {
        if (!current()) return;
        if (type === 'ERROR') {
          const status = obj as unknown as { code?: number; message?: string };
          expired = status.code === 410;
          if (expired) this.stats.expired++;
          log.info({ code: status.code, message: status.message }, 'watch error event; re-listing');
          return;
        }
        if (type === 'BOOKMARK') this.stats.bookmarks++;
        if (obj.metadata.resourceVersion) this.lastRv = obj.metadata.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED') this.deliver(obj);
      },
      (err) => {
        if (!current()) return;
        if (isGone(err)) {
          this.stats.expired++;
          expired = true;
          log.info({ code: 410, resourceVersion: this.lastRv }, 'watch answered 410 Gone; re-listing');
        }
        if (err || expired) this.retry(expired ? 'expired' : String(err));
        else void this.watch().catch((e: unknown) => this.retry(String(e))); // clean end: continue from lastRv
      },
    );
    this.retryDelay = this.o.retryMs ?? 500;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      if (!current()) return;
      this.generation++; // the old watch's late events and end are ignored from here on
      this.handle?.stop();
      this.retry('resync');
    }, resyncMs + RESYNC_GRACE_MS);
    this.resyncTimer.unref?.();
  }

  /** Re-lists then re-watches after a delay that grows while the API server keeps failing. */
  private retry(why: string): void {
    if (this.stopped || this.timer) return;
    const immediate = why === 'expired' || why === 'resync';
    const delay = immediate ? 0 : this.retryDelay;
    if (!immediate) this.retryDelay = Math.min(this.retryDelay * 2, 10_000);
    log.debug({ why, delay }, 're-list');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.list()
        .then(() => this.watch())
        .catch((err: unknown) => {
          log.warn({ err: String(err) }, 'secret list/watch failed; retrying');
          this.retry(String(err));
        });
    }, delay);
  }

  private deliver(secret: KubeObject): void {
    const raw = (secret.data as Record<string, string> | undefined)?.[CRL_SECRET_KEYS.bundle] ?? '';
    if (raw === '' || raw === this.lastBundleText) return; // re-lists and bookmarks repeat what we have
    this.lastBundleText = raw;
    this.delivery = this.delivery.then(async () => {
      try {
        const bundle = bundleFromSecret(secret);
        if (!bundle) return;
        this.stats.delivered++;
        await this.o.onBundle(bundle);
      } catch (err) {
        log.error({ err, secret: secret.metadata.name }, 'revocation bundle from the Secret not applied');
      }
    });
  }
}

export type { WatchEventType };
