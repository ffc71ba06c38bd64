import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessBundle } from '../access/types.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { withFileLock } from '../store/file-lock.js';

/** Local mode's access bundle, beside the CRL bundle in `<dataDir>/server/`. */
export const ACCESS_FILE = 'access.json';
const LOCK_FILE = '.access-publish.lock';

/** Where a new access bundle goes after every change (file in local mode, Secret in cluster mode). */
export interface AccessPublisher {
  readonly name: string;
  publish(bundle: AccessBundle): Promise<void>;
}

/** The version of the bundle published in `dir`, or undefined when there is none that reads. */
export function publishedAccessVersion(dir: string): number | undefined {
  try {
    const v = (JSON.parse(readFileSync(join(dir, ACCESS_FILE), 'utf8')) as { version?: unknown }).version;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes `<dir>/access.json` atomically (0644: the agent may run as another user), unless the file
 * already holds a higher version. Several processes publish (web app, CLI) and may finish out of
 * order: the check and the write are one critical section across processes (a file lock).
 * The same version is rewritten (it is the same content; generatedAt moves).
 */
export class LocalAccessPublisher implements AccessPublisher {
  readonly name: string;
  constructor(private readonly dir: string) {
    this.name = `local-file:${join(dir, ACCESS_FILE)}`;
  }

  async publish(bundle: AccessBundle): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    withFileLock(join(this.dir, LOCK_FILE), () => {
      if ((publishedAccessVersion(this.dir) ?? -1) > bundle.version) return;
      writeFileAtomic(join(this.dir, ACCESS_FILE), `${JSON.stringify(bundle, null, 2)}\n`, 0o644);
    });
  }
}
