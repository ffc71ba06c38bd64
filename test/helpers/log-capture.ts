import fs from 'node:fs';

/**
 * Records what the process logger writes to stderr while `fn` runs. The logger (pino with a sync
 * destination on fd 2) writes through `fs.writeSync`, so the tap sits there; the text still reaches
 * stderr. Returns the parsed JSON records.
 */
export async function captureLog(fn: () => Promise<void>): Promise<Record<string, unknown>[]> {
  const original = fs.writeSync;
  let text = '';
  (fs as { writeSync: unknown }).writeSync = (fd: number, data: unknown, ...rest: unknown[]): number => {
    if (fd === 2) text += typeof data === 'string' ? data : Buffer.from(data as Uint8Array).toString('utf8');
    return (original as (...a: unknown[]) => number)(fd, data, ...rest);
  };
  try {
    await fn();
  } finally {
    fs.writeSync = original;
  }
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
