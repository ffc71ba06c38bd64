import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { repeat, systemClock, type Clock, type Timer } from '../lib/clock.js';
import { BadRequest } from '../lib/errors.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { logger } from '../lib/logger.js';
import type { AuditStore } from '../store/types.js';
import { checkPassphrase } from './backup-format.js';
import { createStoreBackup } from './store-backup.js';

const log = logger.child({ module: 'backup-schedule' });
/** Scheduled backups are named so that name order is time order. */
const NAME = /^podgate-\d{8}T\d{6}Z\.pgbackup$/;

/** `podgate-20261130T235959Z.pgbackup` for `at`. */
export function backupFileName(at: Date): string {
  return `podgate-${at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')}.pgbackup`;
}

/** When a scheduled backup was taken: the time in its name (the clock that named it), else its mtime. */
function backupTime(name: string, stat: () => { mtimeMs: number }): number {
  const m = /^podgate-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(name);
  const t = m ? Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`) : NaN;
  return Number.isNaN(t) ? stat().mtimeMs : t;
}

/** Reads a passphrase file (one line) and checks its length; names `field` in every error. */
export function readPassphraseFile(file: string, field: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BadRequest(`${field}: ${file} cannot be read`, field, err);
  }
  return checkPassphrase(text.replace(/\r?\n$/, ''), field);
}

export interface BackupScheduleDeps {
  config: Config;
  audit: AuditStore;
  now: () => Date;
  /** The timer's clock (default: the system clock); `now` names the backups. */
  clock?: Clock;
}

/**
 * The backups `serve` writes every `backup.intervalHours` into `backup.dir` (0600, written atomically),
 * keeping the newest `backup.keep`. A failed run is logged and audited; the next one is tried on time.
 */
export class BackupScheduler {
  private timer: Timer | undefined;
  private running: Promise<string | undefined> | undefined;
  readonly dir: string;
  private readonly passphrase: string;

  constructor(private readonly deps: BackupScheduleDeps) {
    const b = deps.config.backup;
    if (!b.dir || !b.passphraseFile) throw new BadRequest('backup.dir is not set', 'backup.dir');
    this.dir = resolve(b.dir);
    // read at start: a missing passphrase file stops `serve` now, not silently at the first run
    this.passphrase = readPassphraseFile(b.passphraseFile, 'backup.passphraseFile');
  }

  /** Backups in the directory, oldest first. */
  list(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((n) => NAME.test(n))
        .sort();
    } catch {
      return [];
    }
  }

  /** Writes one backup now and prunes old ones; returns the file written, undefined after a failure. */
  runOnce(): Promise<string | undefined> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<string | undefined> {
    const { config, audit, now } = this.deps;
    const at = now();
    const file = join(this.dir, backupFileName(at));
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const made = await createStoreBackup({
        config,
        dataDir: config.dataDir,
        passphrase: this.passphrase,
        now: at,
        exclude: [this.dir],
      });
      writeFileAtomic(file, made.data, 0o600);
      const removed = this.prune();
      await audit.appendAudit({
        actor: 'system',
        action: 'backup.scheduled',
        target: file,
        result: 'ok',
        details: {
          bytes: made.data.length,
          sha256: made.sha256,
          certificates: made.info.certificates,
          removed,
        },
      });
      log.info({ file, bytes: made.data.length, removed }, 'scheduled backup written');
      return file;
    } catch (err) {
      log.error({ err, dir: this.dir }, 'scheduled backup failed');
      await audit.appendAudit({
        actor: 'system',
        action: 'backup.scheduled',
        target: file,
        result: 'error',
        details: { error: (err as Error).message },
      });
      return undefined;
    }
  }

  /** Deletes all but the newest `backup.keep` backups; returns the names removed. */
  private prune(): string[] {
    const all = this.list();
    const extra = all.slice(0, Math.max(0, all.length - this.deps.config.backup.keep));
    for (const n of extra) rmSync(join(this.dir, n), { force: true });
    return extra;
  }

  /**
   * Runs on the interval. The first run comes at once when the newest backup is older than one
   * interval (or there is none), so a restarted `serve` does not skip a day.
   */
  start(): void {
    const clock = this.deps.clock ?? systemClock;
    const every = this.deps.config.backup.intervalHours * 3_600_000;
    const newest = this.list().at(-1);
    const age = newest
      ? clock.now().getTime() - backupTime(newest, () => statSync(join(this.dir, newest)))
      : Infinity;
    const first = Math.max(0, Math.min(every, every - age));
    // repeat() takes any delay: intervalHours past ~596 h exceeds setTimeout's 2^31-1 ms limit.
    this.timer = repeat(clock, every, () => this.runOnce(), { firstMs: first });
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    await this.running;
  }
}
