import { readFileSync } from 'node:fs';
import type { ClientConfig } from 'pg';
import type { StoreTarget } from '../../config/store-schema.js';

export type PgTarget = Extract<StoreTarget, { engine: 'postgres' }>;

/** Type OIDs whose text the driver would hand over as strings. */
const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * bigint columns (ids, CRL numbers, byte counters) as JS numbers: every value podgate stores stays far
 * below 2^53. A value past it would be a corrupt row, so it is refused rather than rounded. Set per
 * connection, not on the driver's global type table.
 */
function toSafeNumber(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`integer ${text} is beyond 2^53`);
  return n;
}

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === INT8_OID || oid === NUMERIC_OID) return toSafeNumber;
    return pgTypes.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};

let pgTypes: { getTypeParser(oid: number, format: 'text' | 'binary'): unknown };

/** The driver module, loaded once (its import costs start-up time the SQLite mode should not pay). */
export async function loadPg(): Promise<typeof import('pg').default> {
  const mod = (await import('pg')).default;
  pgTypes = mod.types;
  return mod;
}

/**
 * Connection settings for one client from the resolved store target. Everything comes from the target
 * (the config layer read PG* and the password file); nothing is left for the driver to read from the
 * environment by itself.
 */
export function clientConfig(target: PgTarget, applicationName = 'podgate'): ClientConfig {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    database: target.database,
    password: target.password,
    application_name: applicationName,
    ssl:
      target.sslMode === 'disable'
        ? false
        : target.sslMode === 'require'
          ? { rejectUnauthorized: false }
          : {
              rejectUnauthorized: true,
              ca: target.sslRootCertFile ? readFileSync(target.sslRootCertFile, 'utf8') : undefined,
            },
    types,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  };
}
