import type { Migration } from '../../migrations/migration.js';

/**
 * A version number for `shared_files`, so that a replica's check "did the CA files change?" (before
 * every issue and revoke) reads one integer instead of hashing every file. A statement trigger bumps
 * it in the transaction of every write to the table, whoever writes: this release's push, the SQLite
 * copy, and a replica of the previous release during a rolling update (which knows nothing of the
 * counter and still compares hashes).
 */
export const pgMigration002: Migration = {
  version: 2,
  name: 'shared-files-version',
  up: `
CREATE TABLE shared_files_state (
  id      integer PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL
);
INSERT INTO shared_files_state (id, version) VALUES (1, 1);

CREATE FUNCTION shared_files_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE shared_files_state SET version = version + 1 WHERE id = 1;
  RETURN NULL;
END $$;
CREATE TRIGGER shared_files_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON shared_files
  FOR EACH STATEMENT EXECUTE FUNCTION shared_files_bump();
`,
};
