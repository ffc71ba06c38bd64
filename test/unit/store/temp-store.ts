import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore, type NewCert } from '../../../src/store/index.js';

/** A store on a real SQLite file in a fresh temp dir; `cleanup` closes it and removes the dir. */
export interface TempStore {
  store: SqliteStore;
  dir: string;
  file: string;
  /** A second, raw connection to the same file (to check what the store's API cannot reach). */
  raw(): Database.Database;
  cleanup(): Promise<void>;
}

export function tempStore(): TempStore {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-store-'));
  const file = join(dir, 'data', 'podgate.db');
  const store = SqliteStore.open(file);
  const raws: Database.Database[] = [];
  return {
    store,
    dir,
    file,
    raw() {
      const db = new Database(file);
      raws.push(db);
      return db;
    },
    async cleanup() {
      for (const db of raws) if (db.open) db.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let serialCounter = 0x1000;

/** Upper-case even-length hex serial, unique within the test process. */
export function nextSerial(): string {
  serialCounter += 1;
  return `7F${serialCounter.toString(16).toUpperCase().padStart(30, '0')}`;
}

/** A certificate row with sensible defaults (the PEM is a placeholder: the store does not parse it). */
export function newCert(over: Partial<NewCert> = {}): NewCert {
  return {
    serial: nextSerial(),
    commonName: 'alice-laptop',
    ownerId: null,
    deviceName: 'laptop',
    kind: 'client',
    keyType: 'ec-p256',
    notBefore: new Date('2026-01-01T00:00:00.000Z'),
    notAfter: new Date('2027-01-01T00:00:00.000Z'),
    certPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    ...over,
  };
}

/** Asserts that fn throws an AppError subclass with this name and field; returns it for more checks. */
export async function expectAppError(
  fn: () => unknown,
  name: string,
  field?: string,
): Promise<Error & { field?: string }> {
  try {
    await fn();
  } catch (err) {
    const e = err as Error & { field?: string };
    if (e.name !== name || (field !== undefined && e.field !== field)) {
      throw new Error(`expected ${name}(${field ?? ''}), got ${e.name}(${String(e.field)}): ${e.message}`);
    }
    return e;
  }
  throw new Error(`expected ${name}(${field ?? ''}), nothing was thrown`);
}
