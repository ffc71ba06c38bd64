import type { Migration } from './migration.js';

/**
 * The admin certificate list at 10,000+ rows: every sort, filter and search it offers reads an index
 * (test/integration/store/cert-list-plans.test.ts asserts the query plans), and its counts read a
 * maintained counter instead of counting rows.
 * - owner_name: the owner's name copied onto the certificate ('' without an owner; set on insert, kept by
 *   a trigger should a user ever be renamed), so sorting by owner walks an index instead of joining and sorting every row.
 * - indexes that put each filter's equality column before each sort column.
 * - cert_counts: certificates per status, kept by triggers (insert, status change, delete).
 * - certificates_search: an FTS5 trigram index of common name, device name and owner name for substring
 *   search (3 characters or more; shorter strings read the whole search index, still not the table). Rows
 *   are tied to certificates by serial, not rowid: VACUUM may renumber rowids of a table whose key is text.
 */
export const migration013: Migration = {
  version: 13,
  name: 'cert-list-indexes',
  up: `
ALTER TABLE certificates ADD COLUMN owner_name TEXT NOT NULL DEFAULT '';
UPDATE certificates SET owner_name = coalesce((SELECT name FROM users WHERE users.id = certificates.owner_id), '');
CREATE TRIGGER users_rename_owner_name AFTER UPDATE OF name ON users BEGIN
  UPDATE certificates SET owner_name = NEW.name WHERE owner_id = NEW.id;
END;

CREATE INDEX certificates_status ON certificates (status);
CREATE INDEX certificates_status_created_at ON certificates (status, created_at);
CREATE INDEX certificates_status_common_name ON certificates (status, common_name);
CREATE INDEX certificates_owner_name ON certificates (owner_name);
CREATE INDEX certificates_status_owner_name ON certificates (status, owner_name);
CREATE INDEX certificates_owner_status ON certificates (owner_id, status);

CREATE TABLE cert_counts (
  status TEXT PRIMARY KEY CHECK (status IN ('valid', 'revoked')),
  n      INTEGER NOT NULL CHECK (n >= 0)
) STRICT;
INSERT INTO cert_counts (status, n) VALUES ('valid', 0), ('revoked', 0);
UPDATE cert_counts SET n = (SELECT count(*) FROM certificates WHERE certificates.status = cert_counts.status);
CREATE TRIGGER certificates_count_insert AFTER INSERT ON certificates BEGIN
  UPDATE cert_counts SET n = n + 1 WHERE status = NEW.status;
END;
CREATE TRIGGER certificates_count_delete AFTER DELETE ON certificates BEGIN
  UPDATE cert_counts SET n = n - 1 WHERE status = OLD.status;
END;
CREATE TRIGGER certificates_count_status AFTER UPDATE OF status ON certificates
WHEN OLD.status IS NOT NEW.status BEGIN
  UPDATE cert_counts SET n = n - 1 WHERE status = OLD.status;
  UPDATE cert_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE VIRTUAL TABLE certificates_search USING fts5(
  serial UNINDEXED, common_name, device_name, owner_name, tokenize = 'trigram'
);
INSERT INTO certificates_search (serial, common_name, device_name, owner_name)
  SELECT serial, common_name, device_name, owner_name FROM certificates;
CREATE TRIGGER certificates_search_insert AFTER INSERT ON certificates BEGIN
  INSERT INTO certificates_search (serial, common_name, device_name, owner_name)
  VALUES (NEW.serial, NEW.common_name, NEW.device_name, NEW.owner_name);
END;
CREATE TRIGGER certificates_search_update AFTER UPDATE OF common_name, device_name, owner_name ON certificates BEGIN
  DELETE FROM certificates_search WHERE serial = OLD.serial;
  INSERT INTO certificates_search (serial, common_name, device_name, owner_name)
  VALUES (NEW.serial, NEW.common_name, NEW.device_name, NEW.owner_name);
END;
CREATE TRIGGER certificates_search_delete AFTER DELETE ON certificates BEGIN
  DELETE FROM certificates_search WHERE serial = OLD.serial;
END;
`,
};
