/**
 * PostgreSQL stores for tests: one server per mocha run (started on first use, stopped by a root
 * after-all hook), a fresh database per store.
 */
import type { StoreTarget } from '../../src/config/store-schema.js';
import { PgStore } from '../../src/store/pg/pg-store.js';
import { startPostgres, type PgServer } from './postgres.js';

let shared: Promise<PgServer> | undefined;
let started: PgServer | undefined;

/** The run's PostgreSQL server, started on first call. */
export function sharedPostgres(): Promise<PgServer> {
  shared ??= startPostgres().then((s) => (started = s));
  return shared;
}

after(async function () {
  this.timeout(30_000);
  if (started) await started.stop();
  started = undefined;
  shared = undefined;
});

export type PgTarget = Extract<StoreTarget, { engine: 'postgres' }>;

/** The resolved store target of `database` on `pg` (as config would give it). */
export function pgTarget(pg: PgServer, database: string, poolSize = 4): PgTarget {
  return {
    engine: 'postgres',
    host: pg.host,
    port: pg.port,
    user: pg.user,
    database,
    password: pg.password,
    sslMode: 'disable',
    sslRootCertFile: undefined,
    poolSize,
    display: pg.url(database),
  };
}

/** A PgStore on a fresh database of the shared server. */
export async function freshPgStore(
  poolSize = 4,
): Promise<{ store: PgStore; target: PgTarget; database: string }> {
  const pg = await sharedPostgres();
  const database = await pg.createDatabase('store');
  const target = pgTarget(pg, database, poolSize);
  return { store: await PgStore.open(target), target, database };
}
