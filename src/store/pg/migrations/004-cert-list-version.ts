import type { Migration } from '../../migrations/migration.js';

/**
 * The certificate list at 10,000+ rows, PostgreSQL side of SQLite 014:
 * - cert_list_version: a number bumped by a statement trigger in the transaction of every insert,
 *   delete, and update of a column some filter or search reads, so that a list's total is counted once
 *   per change, not once per request (src/store/count-memo.ts);
 * - one trigram index per searched column instead of one over the three: a search is an OR of three
 *   ILIKEs, which the planner answers with a BitmapOr of the three indexes (with the three-column index
 *   it estimated an eighth of the table and read every row to count the matches).
 */
export const pgMigration004: Migration = {
  version: 4,
  name: 'cert-list-version',
  up: `
CREATE TABLE cert_list_version (
  id integer PRIMARY KEY CHECK (id = 1),
  n  bigint NOT NULL
);
INSERT INTO cert_list_version (id, n) VALUES (1, 1);
CREATE FUNCTION cert_list_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE cert_list_version SET n = n + 1 WHERE id = 1;
  RETURN NULL;
END $$;
CREATE TRIGGER certificates_list_version AFTER INSERT OR DELETE OR TRUNCATE ON certificates
  FOR EACH STATEMENT EXECUTE FUNCTION cert_list_version_bump();
CREATE TRIGGER certificates_list_version_update
  AFTER UPDATE OF status, owner_id, owner_name, kind, not_after, common_name, device_name ON certificates
  FOR EACH STATEMENT EXECUTE FUNCTION cert_list_version_bump();

DROP INDEX certificates_search;
CREATE INDEX certificates_search_common_name ON certificates USING gin (common_name gin_trgm_ops);
CREATE INDEX certificates_search_device_name ON certificates USING gin (device_name gin_trgm_ops);
CREATE INDEX certificates_search_owner_name ON certificates USING gin (owner_name gin_trgm_ops);
`,
};
