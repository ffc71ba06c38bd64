/**
 * One list + watch loop for every kind the agent follows (the podgate-crl and podgate-access Secrets,
 * Namespaces, Pods, Services), the way client-go's reflector does it:
 *
 * - list, hand over every object (`onList`), then watch from the list's resourceVersion with bookmarks,
 *   which keep that version fresh while nothing of this kind changes;
 * - each watch asks the server to end it after `resyncMs` (the server sends a bookmark just before); on
 *   that clean end the loop watches again from the last version seen, without a re-list;
 * - if that end has not come RESYNC_GRACE_MS after the deadline, the connection went half-open (no FIN,
 *   no data) and would leave the agent deaf: the loop drops it and re-lists;
 * - on 410 Gone (the version is older than the history the server keeps, e.g. after an etcd compaction)
 *   it re-lists at once; on any other error (API server down, 403, 500) it re-lists with a backoff that
 *   doubles up to 10 s.
 *
 * A re-list hands over the complete current set again (`onList`): whoever keeps objects drops those the
 * new list lacks (deletions missed while not watching).
 */
import { logger } from '../lib/logger.js';
import type { KubeApi, KubeObject, WatchHandle } from './kube-api.js';

const log = logger.child({ module: 'cluster.watch' });

/** How long after the server's own watch deadline the loop stops waiting for the stream's end. */
export const RESYNC_GRACE_MS = 5000;
/** Upper bound of the retry backoff. */
export const MAX_RETRY_MS = 10_000;

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListWatchOptions {
  kube: KubeApi;
  apiVersion: string;
  kind: string;
  /** Absent: cluster-wide. */
  namespace?: string;
  fieldSelector?: string;
  /** A list finished: every object there is now (at start and after each re-list). */
  onList: (items: KubeObject[]) => void;
  /** One change the watch saw. */
  onChange: (type: ChangeType, obj: KubeObject) => void;
  /** First retry delay after an error; doubles up to MAX_RETRY_MS. Default 500 ms. */
  retryMs?: number;
  /** Each watch asks the server to end it after this long. Default 5 min. */
  resyncMs?: number;
}

/** A watch that failed with HTTP 410 (the client-node Watch puts the status on the error). */
function isGone(err: unknown): boolean {
  return (err as { statusCode?: number } | null)?.statusCode === 410;
}

export class ListWatch {
  private handle: WatchHandle | undefined;
  private stopped = false;
  private lastRv = '';
  private retryDelay: number;
  private timer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** Bumped for every watch; callbacks of an older one are ignored. */
  private generation = 0;
  /**
   * Counts for tests and logs: lists and watches started, watches the server answered (`established`),
   * bookmarks, 410 Gone answers and errors seen.
   */
  readonly stats = { lists: 0, watches: 0, established: 0, bookmarks: 0, expired: 0, errors: 0 };

  constructor(private readonly o: ListWatchOptions) {
    this.retryDelay = o.retryMs ?? 500;
  }

  private get what(): string {
    return `${this.o.kind}${this.o.namespace ? ` in ${this.o.namespace}` : ''}`;
  }

  /** Lists once (handing the objects over) and starts watching. Rejects if that first list fails. */
  async start(): Promise<void> {
    await this.list();
    await this.watch();
  }

  /**
   * Like start(), but never rejects: a first list that fails (API server unreachable at pod start) is
   * retried with backoff until it works or stop() is called.
   */
  begin(): void {
    this.start().catch((err: unknown) => {
      log.warn({ err: String(err), kind: this.what }, 'first list failed; retrying');
      this.retry(String(err));
    });
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.handle?.stop();
  }

  /** The resourceVersion the next watch continues from (the last list, event or bookmark). */
  get resourceVersion(): string {
    return this.lastRv;
  }

  private async list(): Promise<void> {
    this.stats.lists++;
    const list = await this.o.kube.list(this.o.apiVersion, this.o.kind, {
      namespace: this.o.namespace,
      fieldSelector: this.o.fieldSelector,
    });
    if (this.stopped) return;
    this.lastRv = list?.resourceVersion ?? '';
    this.o.onList(list?.items ?? []);
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    this.stats.watches++;
    let expired = false;
    const generation = ++this.generation;
    const current = () => generation === this.generation && !this.stopped;
    const resyncMs = this.o.resyncMs ?? 300_000;
    // Armed before the request: a server that never answers the watch's headers is half-open too.
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      if (!current()) return;
      this.generation++; // the old watch's late events and end are ignored from here on
      this.handle?.stop();
      this.retry('resync');
    }, resyncMs + RESYNC_GRACE_MS);
    this.resyncTimer.unref?.();
    const handle = await this.o.kube.watch(
      this.o.apiVersion,
      this.o.kind,
      {
        namespace: this.o.namespace,
        fieldSelector: this.o.fieldSelector,
        resourceVersion: this.lastRv,
        timeoutSeconds: Math.max(1, Math.round(resyncMs / 1000)),
      },
      (type, obj) => {
        if (!current()) return;
        if (type === 'ERROR') {
          const status = obj as unknown as { code?: number; message?: string };
          expired = status.code === 410;
          if (expired) this.stats.expired++;
          log.info({ code: status.code, message: status.message, kind: this.what }, 'watch error event');
          return;
        }
        if (type === 'BOOKMARK') this.stats.bookmarks++;
        if (obj.metadata.resourceVersion) this.lastRv = obj.metadata.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.o.onChange(type, obj);
      },
      (err) => {
        if (!current()) return;
        if (isGone(err)) {
          this.stats.expired++;
          expired = true;
          log.info({ code: 410, resourceVersion: this.lastRv, kind: this.what }, 'watch answered 410 Gone');
        }
        if (err || expired) this.retry(expired ? 'expired' : String(err));
        else void this.watch().catch((e: unknown) => this.retry(String(e))); // clean end: continue from lastRv
      },
    );
    if (!current()) {
      handle.stop(); // the resync timer gave up on this one while its headers were on the way
      return;
    }
    this.handle = handle;
    this.stats.established++;
    this.retryDelay = this.o.retryMs ?? 500;
  }

  /** Re-lists then re-watches after a delay that grows while the API server keeps failing. */
  private retry(why: string): void {
    if (this.stopped || this.timer) return;
    const immediate = why === 'expired' || why === 'resync';
    const delay = immediate ? 0 : this.retryDelay;
    if (!immediate) {
      this.stats.errors++;
      this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_MS);
    }
    log.debug({ why, delay, kind: this.what }, 're-list');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.list()
        .then(() => this.watch())
        .catch((err: unknown) => {
          log.warn({ err: String(err), kind: this.what }, 'list/watch failed; retrying');
          this.retry(String(err));
        });
    }, delay);
  }
}
