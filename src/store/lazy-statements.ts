import type Database from 'better-sqlite3';

/**
 * The connection as the SQLite repositories see it: `prepare` hands back a statement that SQLite
 * compiles on its first use instead of at once. The repositories prepare every statement they might
 * run in their constructors (~200 of them); a CLI call runs a handful, and compiling the rest was a
 * large part of opening the store. Everything else is the connection itself.
 *
 * Limit: an SQL error in a statement now shows on its first use, not when the store opens (the suites
 * run every repository method, and migrations still run eagerly).
 */
export function lazyStatements(db: Database.Database): Database.Database {
  const prepare = (sql: string): Database.Statement => {
    let real: Database.Statement | undefined;
    const statement = (): Database.Statement => (real ??= db.prepare(sql));
    return new Proxy({} as Database.Statement, {
      get(_target, key) {
        const s = statement();
        const value = Reflect.get(s, key, s) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(s) : value;
      },
    });
  };
  return new Proxy(db, {
    get(target, key) {
      if (key === 'prepare') return prepare;
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
