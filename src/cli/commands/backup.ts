import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { BadRequest, Conflict } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import { readPassphraseFile } from '../../services/backup-schedule.js';
import { auditToStore, createStoreBackup, restoreStoreBackup } from '../../services/store-backup.js';
import { globalOpts, type CliEnv } from '../env.js';
import type { Config } from '../../config/schema.js';
import { publishedCrlNumber } from '../../cluster/cluster-publisher.js';

/** The passphrase from --passphrase-file, else backup.passphraseFile. */
function passphrase(file: string | undefined, configured: string | undefined): string {
  if (file) return readPassphraseFile(file, 'passphrase-file');
  if (configured) return readPassphraseFile(configured, 'backup.passphraseFile');
  throw new BadRequest('--passphrase-file is required (or set backup.passphraseFile)', 'passphrase-file');
}

/**
 * In cluster mode the server may hold a CRL newer than the backup's (revocations made after it): the
 * restored CRL must be numbered above the podgate-crl Secret's, or the agent refuses every later CRL.
 * Undefined when no cluster is configured or the Secret does not exist; a 400 naming
 * --crl-number-above when the API server cannot be asked.
 */
async function clusterCrlNumber(config: Config, env: CliEnv): Promise<number | undefined> {
  try {
    const n = await publishedCrlNumber(config, env.env);
    if (typeof n === 'number')
      env.err(`the podgate-crl Secret holds CRL #${n}: the restored CRL is numbered above it`);
    return n ?? undefined;
  } catch (err) {
    throw new BadRequest(
      `a cluster is configured but the podgate-crl Secret cannot be read (${(err as Error).message}): ` +
        "pass --crl-number-above N with the highest CRL number the server has seen (the Secret's), or 0 when it never had one",
      'crl-number-above',
      err,
    );
  }
}

/**
 * `podgate backup --out FILE --passphrase-file F`: one encrypted file with everything needed to bring
 * the store back (the data dir on SQLite; the database's rows and CA files on PostgreSQL), taken while
 * `serve` and `server run` keep running.
 * `podgate restore FILE --data-dir DIR --passphrase-file F`: into a new or empty DIR only, or with a
 * PostgreSQL store.url into an empty database. The archive is the same on both engines.
 */
export function register(program: Command, env: CliEnv): void {
  program
    .command('backup')
    .description(
      'write an encrypted backup of the store: the data dir, or the PostgreSQL database (safe while serve and server run are running)',
    )
    .requiredOption('--out <file>', 'the backup file to write (must not exist yet)')
    .option('--passphrase-file <file>', 'file holding the backup passphrase (default: backup.passphraseFile)')
    .action(async (o: { out: string; passphraseFile?: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      const config = env.loadConfig(g);
      const pass = passphrase(o.passphraseFile, config.backup.passphraseFile);
      const out = resolve(o.out);
      if (!existsSync(dirname(out)) || !statSync(dirname(out)).isDirectory())
        throw new BadRequest(`--out: directory ${dirname(out)} does not exist`, 'out');
      if (existsSync(out)) throw new Conflict(`--out: ${out} already exists`, 'out');
      const dataDir = resolve(config.dataDir);
      const made = await createStoreBackup({ config, dataDir, passphrase: pass, exclude: [out] });
      writeFileAtomic(out, made.data, 0o600);
      await auditToStore(config, {
        actor: 'cli',
        action: 'backup.create',
        target: out,
        result: 'ok',
        details: { bytes: made.data.length, sha256: made.sha256, certificates: made.info.certificates },
      });
      if (g.json) {
        env.out(
          JSON.stringify({ file: out, bytes: made.data.length, sha256: made.sha256, ...made.info }, null, 2),
        );
        return;
      }
      env.out(
        `wrote ${out} (${made.data.length} bytes; ${made.info.certificates} certificates, ` +
          `${made.info.revoked} revoked, CRL #${made.info.crlNumber ?? '-'}; schema ${made.info.schemaVersion})`,
      );
      env.out(`sha256 ${made.sha256}`);
    });

  program
    .command('restore <file>')
    .description(
      'restore a backup into a new or empty data dir, or an empty PostgreSQL database (checks the whole file before writing)',
    )
    .option('--passphrase-file <file>', 'file holding the backup passphrase (default: backup.passphraseFile)')
    .option(
      '--crl-number-above <n>',
      'the highest CRL number the VPN server has seen since the backup; the restored CRL is re-signed above it (in cluster mode read from the podgate-crl Secret when not given)',
    )
    .action(async (file: string, o: { passphraseFile?: string; crlNumberAbove?: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      const config = env.loadConfig(g);
      const pass = passphrase(o.passphraseFile, config.backup.passphraseFile);
      if (o.crlNumberAbove !== undefined && !/^\d{1,15}$/.test(o.crlNumberAbove))
        throw new BadRequest('--crl-number-above must be a whole number', 'crl-number-above');
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch (err) {
        throw new BadRequest(`backup file ${file} cannot be read`, 'file', err);
      }
      let above = o.crlNumberAbove === undefined ? undefined : Number(o.crlNumberAbove);
      if (above === undefined) above = await clusterCrlNumber(config, env);
      const r = await restoreStoreBackup({
        file: data,
        passphrase: pass,
        config,
        actor: 'cli',
        ...(above !== undefined ? { crlNumberAbove: above } : {}),
      });
      if (g.json) {
        env.out(
          JSON.stringify({ dataDir: r.dataDir, files: r.files, ...r.info, crlNumber: r.crlNumber }, null, 2),
        );
        return;
      }
      env.out(
        `restored ${r.files} files into ${r.dataDir} (backup of ${r.info.createdAt}: ${r.info.certificates} ` +
          `certificates, ${r.info.revoked} revoked, CRL #${r.crlNumber ?? '-'})`,
      );
    });
}
