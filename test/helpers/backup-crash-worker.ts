// Child process for test/integration/services/backup-restore-edges.test.ts: runs a backup or a
// restore and SIGKILLs itself at a named point of it (a crash mid-way).
// Usage: node backup-crash-worker.js backup DATA_DIR POINT
//        node backup-crash-worker.js restore DATA_DIR POINT BACKUP_FILE
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/load.js';
import { setLogLevel } from '../../src/lib/logger.js';
import { createBackup, restoreBackup } from '../../src/services/backup.js';

const WORKER_PASSPHRASE = 'crash worker backup passphrase';
const [action, dataDir, point, file] = process.argv.slice(2) as [string, string, string, string?];
setLogLevel('silent');
const probe = (p: string) => {
  if (p === point) process.kill(process.pid, 'SIGKILL');
};
if (action === 'backup') {
  await createBackup({ dataDir, passphrase: WORKER_PASSPHRASE, probe });
} else {
  const config = loadConfig({ env: {}, overrides: { dataDir } });
  await restoreBackup({
    file: readFileSync(file!),
    passphrase: WORKER_PASSPHRASE,
    dataDir,
    config,
    actor: 'worker',
    probe,
  });
}
process.stdout.write('finished without reaching the point\n');
