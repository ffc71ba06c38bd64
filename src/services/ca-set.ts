import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { logger } from '../lib/logger.js';
import type { CertificateAuthority, KeySecret } from '../pki/index.js';
import {
  readCaFiles,
  CA_CERT_FILE,
  CA_KEY_FILE,
  NEXT_CA_CERT_FILE,
  NEXT_CA_KEY_FILE,
  PREVIOUS_CA_CERT_FILE,
  PREVIOUS_CA_KEY_FILE,
} from './ca-files.js';

const log = logger.child({ module: 'ca-set' });

/**
 * The CAs in force: `current` issues profiles; `previous` is the outgoing CA while a rotation's overlap
 * lasts. Long-running processes (`serve`, `server run`) hold one for days while `podgate ca rotate` and
 * `ca retire-old` change the files underneath: callers call refresh() before they issue or sign, and
 * compare `version` to learn that the set changed.
 */
export interface CaSet {
  readonly current: CertificateAuthority;
  readonly previous: CertificateAuthority | undefined;
  /** Goes up by one each time refresh() loads a different set. */
  readonly version: number;
  /** Re-reads the CA files when they changed on disk; true when the set changed. Never throws. */
  refresh(): boolean;
  /**
   * refresh(), after first bringing the data dir up to date with the store when the CA files live
   * there too (PostgreSQL: another replica may have rotated the CA). Call it outside any transaction
   * (it may take a connection of its own). Never throws.
   */
  sync(): Promise<boolean>;
}

/** A set that never changes (tests, and callers that hold a CA of their own). */
export function fixedCaSet(current: CertificateAuthority, previous?: CertificateAuthority): CaSet {
  return { current, previous, version: 0, refresh: () => false, sync: async () => false };
}

const WATCHED = [CA_CERT_FILE, CA_KEY_FILE, PREVIOUS_CA_CERT_FILE, PREVIOUS_CA_KEY_FILE];

/**
 * The CA set of a data dir, reloaded when its files change. A change is seen from the files' identity
 * (inode, size, mtime): four stat calls, cheap enough for every issue. A rotation in progress
 * (`ca-next.*` present: the renames are under way) is not read; nor is a set that does not load (a
 * key that does not match its certificate mid-rename): the set in force stays, and the next refresh
 * tries again.
 */
export class DataDirCaSet implements CaSet {
  private loaded: { ca: CertificateAuthority; previous?: CertificateAuthority } | undefined;
  private stamp = '';
  version = 0;

  /**
   * `loaded` is the set already read from the files; without it the files are read when the set is
   * first used (a read-only command that never signs does not decrypt the CA key at all).
   * @param pull writes the store's copies of the CA files into the data dir when they changed there since
   *   the last pull (PostgreSQL's `shared_files`); absent on SQLite, where the data dir is the only copy.
   */
  constructor(
    private readonly dataDir: string,
    private readonly secret: KeySecret,
    loaded?: { ca: CertificateAuthority; previous?: CertificateAuthority },
    private readonly pull?: () => Promise<unknown>,
  ) {
    if (loaded) {
      this.loaded = loaded;
      this.stamp = this.fileStamp();
    }
  }

  private get set(): { ca: CertificateAuthority; previous?: CertificateAuthority } {
    if (!this.loaded) {
      const stamp = this.fileStamp();
      this.loaded = readCaFiles(this.dataDir, this.secret);
      this.stamp = stamp;
    }
    return this.loaded;
  }

  get current(): CertificateAuthority {
    return this.set.ca;
  }

  get previous(): CertificateAuthority | undefined {
    return this.set.previous;
  }

  private fileStamp(): string {
    return WATCHED.map((name) => {
      try {
        const st = statSync(join(this.dataDir, name));
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return '-';
      }
    }).join('|');
  }

  async sync(): Promise<boolean> {
    if (this.pull) {
      try {
        await this.pull();
      } catch (err) {
        log.warn({ err }, 'could not read the CA files from the store; keeping the CAs in force');
      }
    }
    return this.refresh();
  }

  refresh(): boolean {
    // not read yet: the first use reads the files as they are then
    if (!this.loaded) return false;
    const stamp = this.fileStamp();
    if (stamp === this.stamp) return false;
    const f = (name: string) => join(this.dataDir, name);
    if (existsSync(f(NEXT_CA_CERT_FILE)) || existsSync(f(NEXT_CA_KEY_FILE))) return false;
    let next: { ca: CertificateAuthority; previous?: CertificateAuthority };
    try {
      next = readCaFiles(this.dataDir, this.secret);
    } catch (err) {
      log.warn({ err }, 'the CA files changed but do not load yet; keeping the CAs in force');
      return false;
    }
    this.stamp = stamp;
    const same = next.ca.keyId === this.set.ca.keyId && next.previous?.keyId === this.set.previous?.keyId;
    if (same) return false;
    this.loaded = next;
    this.version += 1;
    log.info(
      { current: next.ca.commonName, previous: next.previous?.commonName ?? null },
      'CA set reloaded from the data dir',
    );
    return true;
  }
}
