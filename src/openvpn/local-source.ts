import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { BadRequest } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { BUNDLE_FILE } from './local-publisher.js';
import type { RevocationBundle } from './revocation-bundle.js';

const log = logger.child({ module: 'local-source' });

/** Parses and shape-checks a bundle file; the CRL inside is verified by the agent. */
export function parseBundle(text: string): RevocationBundle {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BadRequest('revocation bundle is not JSON', 'bundle', err);
  }
  const b = v as Partial<RevocationBundle>;
  if (
    typeof b !== 'object' ||
    b === null ||
    typeof b.crlNumber !== 'number' ||
    typeof b.crlPem !== 'string' ||
    !Array.isArray(b.revoked) ||
    !Array.isArray(b.reissuedCommonNames) ||
    !b.revoked.every((r) => typeof r?.serial === 'string' && typeof r?.commonName === 'string')
  ) {
    throw new BadRequest(
      'revocation bundle lacks crlNumber, crlPem, revoked or reissuedCommonNames',
      'bundle',
    );
  }
  return b as RevocationBundle;
}

export interface LocalSourceOptions<T = RevocationBundle> {
  /** Directory holding revocations.json (`<dataDir>/server`). */
  dir: string;
  onBundle: (bundle: T) => Promise<unknown>;
  /** File name inside `dir` (default revocations.json) and its parser (default parseBundle). */
  fileName?: string;
  parse?: (text: string) => T;
  /** Called when the file exists but cannot be read or parsed (the bundle in force stays). */
  onError?: (err: unknown) => void;
  /** Poll interval behind fs.watch (events can be missed, e.g. on some network file systems). Default 500 ms. */
  pollMs?: number;
}

/**
 * Notices new bundles written by LocalCrlPublisher (possibly from another process, e.g. `podgate cert
 * revoke`): fs.watch on the directory (the file is replaced by rename, so watching the file itself
 * would lose track) plus a short poll of its mtime/size as a fallback.
 */
export class LocalBundleSource<T = RevocationBundle> {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastKey = '';
  private busy: Promise<void> = Promise.resolve();
  private readonly file: string;
  private readonly fileName: string;

  constructor(private readonly o: LocalSourceOptions<T>) {
    this.fileName = o.fileName ?? BUNDLE_FILE;
    this.file = join(o.dir, this.fileName);
  }

  /** Starts watching and delivers the current bundle, if any, at once. */
  async start(): Promise<void> {
    try {
      this.watcher = watch(this.o.dir, (_event, name) => {
        if (name === null || name === this.fileName) this.check();
      });
      this.watcher.on('error', (err) => log.warn({ err }, 'fs.watch failed; polling only'));
    } catch (err) {
      log.warn({ err, dir: this.o.dir }, 'fs.watch unavailable; polling only');
    }
    this.timer = setInterval(() => this.check(), this.o.pollMs ?? 500);
    this.timer.unref?.();
    this.check();
    await this.busy;
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }

  /** Reads the bundle when the file changed; deliveries are serialised. */
  private check(): void {
    this.busy = this.busy.then(async () => {
      let key: string;
      try {
        const st = statSync(this.file);
        key = `${st.mtimeMs}:${st.size}:${st.ino}`;
      } catch {
        return; // not published yet
      }
      if (key === this.lastKey) return;
      this.lastKey = key;
      let bundle: T;
      try {
        const text = readFileSync(this.file, 'utf8');
        bundle = this.o.parse ? this.o.parse(text) : (parseBundle(text) as T);
      } catch (err) {
        log.error({ err, file: this.file }, 'bundle file not read');
        this.o.onError?.(err);
        return;
      }
      try {
        await this.o.onBundle(bundle);
      } catch (err) {
        log.error({ err, file: this.file }, 'bundle not applied');
      }
    });
  }
}
