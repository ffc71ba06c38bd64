/**
 * One schema step. `up` is plain SQL run inside the migration's transaction together with the
 * bookkeeping row, so a step is applied completely or not at all.
 *
 * Rules for new steps: never edit a released step, add `00N-what.ts` and list it in ./index.ts.
 * Connections run with `foreign_keys=ON`, which SQLite ignores inside a transaction; a step that
 * rebuilds a referenced table must keep references valid by itself.
 */
export interface Migration {
  /** Strictly increasing (gaps allowed, filled in order later); stored in `schema_migrations` and `PRAGMA user_version`. */
  readonly version: number;
  readonly name: string;
  readonly up: string;
}
