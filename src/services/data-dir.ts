import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { BadRequest } from '../lib/errors.js';

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * Makes the data dir (mode 0700) or checks the one that exists. It holds the CA key, the key that
 * encrypts it and the database: a dir others can read or write (0777 from a careless `mkdir` or a
 * volume) is tightened to 0700 and the returned note says so. When that is not possible (not the
 * owner), a dir writable by everyone is refused, since anyone could replace the CA files in it; one
 * that is only group-writable or readable (a Kubernetes volume with fsGroup) is used with a note.
 */
export function secureDataDir(dir: string, chmod: typeof chmodSync = chmodSync): { note?: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = statSync(dir).mode;
  if ((mode & 0o077) === 0) return {};
  const tightened = (mode & 0o7000 & ~0o1000) | 0o700; // keep setgid (fsGroup volumes), drop sticky
  try {
    chmod(dir, tightened);
    return {
      note: `data dir ${dir} had mode ${octal(mode)} (others could read or change the CA and database); set to ${octal(tightened)}`,
    };
  } catch (err) {
    if (mode & 0o002) {
      throw new BadRequest(
        `data dir ${dir} has mode ${octal(mode)} (writable by every user) and cannot be changed: run \`chmod 700 ${dir}\` as its owner, or use another dir`,
        'dataDir',
        err,
      );
    }
    return {
      note: `data dir ${dir} has mode ${octal(mode)} and cannot be changed by this user; 0700 is recommended`,
    };
  }
}
