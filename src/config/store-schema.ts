import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * Where the store lives. `url` absent or `sqlite:` = the SQLite file in dataDir (the default: one
 * process, or web + CLI on one machine). `postgres://user@host:port/database` = a PostgreSQL 13+ server
 * shared by several `serve` replicas. The password never goes into the URL (it would show up in argv,
 * process listings and logs): it comes from `passwordFile`, else from the standard `PGPASSWORD`.
 * Parts the URL leaves out come from the standard `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
 * `PGSSLMODE` variables, as with psql.
 */
export const storeSchema = z
  .object({
    url: z
      .string()
      .min(1)
      .superRefine((value, ctx) => {
        const problem = urlProblem(value);
        if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      })
      .optional(),
    /** File holding only the PostgreSQL password (a trailing newline is ignored). */
    passwordFile: z.string().min(1).optional(),
    /** PostgreSQL: connections per process (each transaction holds one while it runs). */
    poolSize: z.number().int().min(1).max(100).default(10),
    /** PostgreSQL with sslmode verify-full: the CA bundle the server certificate must chain to. */
    sslRootCertFile: z.string().min(1).optional(),
    /**
     * Several replicas elect the one that runs the timers: in a pod with a coordination.k8s.io Lease
     * `podgate-manager` in this namespace (the manager's own), elsewhere with a PostgreSQL advisory lock.
     */
    leaseNamespace: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS-1123 label')
      .default('podgate'),
    /** How long the leader's Lease holds without renewal; a new leader takes over within it. */
    leaseSeconds: z.number().int().min(5).max(300).default(15),
  })
  .strict()
  .default({});

export type StoreConfig = z.infer<typeof storeSchema>;

/**
 * disable: no TLS (default: a database on the cluster network); require: TLS without checking the
 * server certificate; verify-full: TLS, certificate chained to sslRootCertFile (or the system CAs) and
 * naming the host. libpq's "prefer" (TLS if offered, else plain) is not offered: say which one you mean.
 */
const SSL_MODES = ['disable', 'require', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** What `store.url` says once the PG* environment and the password file filled its gaps. */
export type StoreTarget =
  | { engine: 'sqlite' }
  | {
      engine: 'postgres';
      host: string;
      port: number;
      user: string;
      database: string;
      /** Undefined: the server needs none (trust, or a client certificate). */
      password: string | undefined;
      sslMode: SslMode;
      sslRootCertFile: string | undefined;
      poolSize: number;
      /** `postgres://user@host:port/database`, safe to log. */
      display: string;
    };

function isSqlite(value: string): boolean {
  return value === 'sqlite:' || value === 'sqlite';
}

function urlProblem(value: string): string | undefined {
  if (isSqlite(value)) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be "sqlite:" or postgres://[user@]host[:port]/database';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return `unknown scheme "${url.protocol}": use "sqlite:" or postgres://[user@]host[:port]/database`;
  }
  if (url.password !== '') {
    return 'must not contain a password: put it in store.passwordFile (or PGPASSWORD)';
  }
  if (url.pathname.length > 1 && url.pathname.slice(1).includes('/')) {
    return 'the path must be one database name, e.g. postgres://podgate@db:5432/podgate';
  }
  for (const key of url.searchParams.keys()) {
    if (key !== 'sslmode') return `unknown parameter "${key}" (only sslmode is understood)`;
  }
  const mode = url.searchParams.get('sslmode');
  if (mode !== null && !(SSL_MODES as readonly string[]).includes(mode)) {
    return `sslmode must be one of ${SSL_MODES.join(', ')}`;
  }
  return undefined;
}

/**
 * Resolves `store` against the PG* environment and reads the password file. Returns problems (each
 * naming the key or variable) instead of throwing, so that the loader reports them with the others.
 */
export function resolveStoreTarget(
  store: StoreConfig,
  env: NodeJS.ProcessEnv,
): { target?: StoreTarget; problems: string[] } {
  if (store.url === undefined || isSqlite(store.url)) {
    if (store.passwordFile !== undefined) {
      return { problems: ['store.passwordFile: only used with a postgres:// store.url'] };
    }
    return { target: { engine: 'sqlite' }, problems: [] };
  }
  const invalid = urlProblem(store.url); // the schema checked it already, unless the caller built `store`
  if (invalid) return { problems: [`store.url: ${invalid}`] };
  const url = new URL(store.url);
  const problems: string[] = [];
  const host = decodeURIComponent(url.hostname) || env.PGHOST || '';
  if (host === '' || host.startsWith('/')) {
    problems.push(
      'store.url: needs a host (in the URL or PGHOST); unix sockets are not supported, use 127.0.0.1',
    );
  }
  const portText = url.port || env.PGPORT || '5432';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    problems.push(`store.url: port "${portText}" (URL or PGPORT) must be 1-65535`);
  }
  const user = decodeURIComponent(url.username) || env.PGUSER || '';
  if (user === '') problems.push('store.url: needs a user (postgres://USER@host/db, or PGUSER)');
  const database = decodeURIComponent(url.pathname.slice(1)) || env.PGDATABASE || user;
  const modeText = url.searchParams.get('sslmode') ?? env.PGSSLMODE ?? 'disable';
  if (!(SSL_MODES as readonly string[]).includes(modeText)) {
    problems.push(`PGSSLMODE: "${modeText}" must be one of ${SSL_MODES.join(', ')}`);
  }
  let password: string | undefined;
  if (store.passwordFile !== undefined) {
    try {
      password = readFileSync(resolve(store.passwordFile), 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      problems.push(
        `store.passwordFile: cannot read ${store.passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    if (password === '') problems.push(`store.passwordFile: ${store.passwordFile} is empty`);
  } else if (env.PGPASSWORD !== undefined && env.PGPASSWORD !== '') {
    password = env.PGPASSWORD;
  }
  if (store.sslRootCertFile !== undefined && modeText !== 'verify-full') {
    problems.push('store.sslRootCertFile: only used with sslmode=verify-full');
  }
  if (problems.length > 0) return { problems };
  return {
    problems: [],
    target: {
      engine: 'postgres',
      host,
      port,
      user,
      database,
      password,
      sslMode: modeText as SslMode,
      sslRootCertFile: store.sslRootCertFile,
      poolSize: store.poolSize,
      display: `postgres://${encodeURIComponent(user)}@${host.includes(':') ? `[${host}]` : host}:${port}/${encodeURIComponent(database)}`,
    },
  };
}
