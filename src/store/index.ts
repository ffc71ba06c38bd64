import { join } from 'node:path';
import { SqliteStore } from './sqlite-store.js';

export * from './types.js';
export { SqliteStore, type OpenOptions } from './sqlite-store.js';
export { migrations, type Migration } from './migrations/index.js';

/** The database file inside a data directory. */
export const DB_FILE_NAME = 'podgate.db';

/** Opens `<dataDir>/podgate.db` (creating the directory 0700 and the file 0600 when missing). */
export function openStore(dataDir: string): SqliteStore {
  return SqliteStore.open(join(dataDir, DB_FILE_NAME));
}
