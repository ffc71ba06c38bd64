import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { withFileLock } from '../store/file-lock.js';
import type { CrlPublisher, RevocationBundle } from './revocation-bundle.js';

/** File names inside `<dataDir>/server/`. */
export const PUBLISHED_CRL = 'crl.pem';
export const BUNDLE_FILE = 'revocations.json';
/** The SQLite file whose lock serialises publishers of different processes (see store/file-lock). */
const LOCK_FILE = '.publish.lock';

/** `<dataDir>/server`, where local mode keeps the published CRL, the bundle and openvpn's files. */
export function serverDir(dataDir: string): string {
  return join(dataDir, 'server');
}

/**
 * Local mode's publisher: writes `<dataDir>/server/crl.pem` and `revocations.json`, each atomically.
 * The bundle is written last: it is what the agent watches, so when the agent reacts both are there.
 * openvpn does not read this crl.pem; the agent copies it, after verification, into the file
 * openvpn's crl-verify reads.
 */
export class LocalCrlPublisher implements CrlPublisher {
  /** Names the directory, so adding the same publisher twice is recognisable (RevocationService.addPublisher). */
  readonly name: string;
  constructor(private readonly dir: string) {
    this.name = `local-file:${dir}`;
  }

  async publish(bundle: RevocationBundle): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    // Several writers (web app, CLI, `server run`) publish into this directory and can finish out of
    // order: the one that read the store before another's revocation must not replace that newer
    // bundle with its older one. The check and the writes form one critical section across processes.
    withFileLock(join(this.dir, LOCK_FILE), () => {
      if ((publishedCrlNumber(this.dir) ?? -1) > bundle.crlNumber) return;
      // Not fsynced (a revoke waited ~4 fsyncs here before the agent could see it): both files are
      // derived from the store, whose commit is durable, and `server run` publishes them again from the
      // store at every start, so a power cut that loses this write loses nothing.
      writeFileAtomic(join(this.dir, PUBLISHED_CRL), bundle.crlPem, 0o644, { durable: false });
      writeFileAtomic(join(this.dir, BUNDLE_FILE), `${JSON.stringify(bundle, null, 2)}\n`, 0o644, {
        durable: false,
      });
    });
  }
}

/** The CRL number of the bundle published in `dir`, or undefined when there is none (or it is unreadable). */
export function publishedCrlNumber(dir: string): number | undefined {
  try {
    const n = (JSON.parse(readFileSync(join(dir, BUNDLE_FILE), 'utf8')) as { crlNumber?: unknown }).crlNumber;
    return typeof n === 'number' ? n : undefined;
  } catch {
    return undefined;
  }
}
