import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../config/load.js';
import { resolveStoreTarget } from '../../config/store-schema.js';
import { BadRequest } from '../../lib/errors.js';
import { SHARED_CA_FILES } from '../../services/ca-files.js';
import { DB_FILE_NAME } from '../../store/index.js';
import { globalOpts, table, type CliEnv } from '../env.js';

/** `podgate store migrate --to postgres://…`: moves the SQLite data dir into an empty PostgreSQL database. */
export function register(program: Command, env: CliEnv): void {
  const store = program.command('store').description('the database: move a SQLite data dir to PostgreSQL');
  store
    .command('migrate')
    .description(
      'copy the SQLite data dir into an empty PostgreSQL database and verify the copy (the source is not changed)',
    )
    .requiredOption(
      '--to <url>',
      'postgres://user@host:port/database (the password from --password-file or PGPASSWORD)',
    )
    .option('--password-file <file>', 'file holding the PostgreSQL password (default: store.passwordFile)')
    .action(async (o: { to: string; passwordFile?: string }, cmd: Command) => {
      const g = globalOpts(cmd);
      const config = env.loadConfig(g);
      if (!/^postgres(ql)?:\/\//.test(o.to)) throw new BadRequest('--to must be a postgres:// URL', 'to');
      const resolved = resolveStoreTarget(
        {
          ...config.store,
          url: o.to,
          passwordFile: o.passwordFile ?? config.store.passwordFile,
          poolSize: 2,
        },
        env.env,
      );
      if (resolved.problems.length > 0 || resolved.target?.engine !== 'postgres') {
        throw new ConfigError(resolved.problems.map((p) => p.replace(/^store\.url/, '--to')));
      }
      const dataDir = resolve(config.dataDir);
      const { copySqliteToPg } = await import('../../store/pg/copy-from-sqlite.js');
      const report = await copySqliteToPg(join(dataDir, DB_FILE_NAME), resolved.target, {
        dir: dataDir,
        pattern: SHARED_CA_FILES,
      });
      if (g.json) {
        env.out(JSON.stringify({ to: resolved.target.display, ...report }, null, 2));
        return;
      }
      env.out(table([['table', 'rows'], ...report.tables.map((t) => [t.name, String(t.rows)])]));
      env.out(
        `copied to ${resolved.target.display}: every table's row count, CRL #${report.crlNumber ?? 'none'} and access version ${report.accessVersion} verified`,
      );
      env.out(`files in the database: ${report.files.join(', ') || 'none'}`);
      env.out(
        `${dataDir} is unchanged. Next: give every replica the CA key secret (ca.passphraseFile, or ${join(dataDir, 'ca-key.kek')}) and store.url=${resolved.target.display}`,
      );
    });
}
