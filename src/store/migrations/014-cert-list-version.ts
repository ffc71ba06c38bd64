import type { Migration } from './migration.js';

/**
 * A version number of what the certificate list filters on, so that a list's total is counted once per
 * change instead of once per request (src/store/count-memo.ts): triggers bump it in the transaction of
 * every insert, delete, and update of a column some filter or search reads (not `last_seen_at`, which
 * connections touch all the time). It only grows, whoever writes (the server, the CLI, a restore).
 */
export const migration014: Migration = {
  version: 14,
  name: 'cert-list-version',
  up: `
CREATE TABLE cert_list_version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  n  INTEGER NOT NULL
) STRICT;
INSERT INTO cert_list_version (id, n) VALUES (1, 1);
CREATE TRIGGER certificates_list_version_insert AFTER INSERT ON certificates BEGIN
  UPDATE cert_list_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER certificates_list_version_delete AFTER DELETE ON certificates BEGIN
  UPDATE cert_list_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER certificates_list_version_update
AFTER UPDATE OF status, owner_id, owner_name, kind, not_after, common_name, device_name ON certificates BEGIN
  UPDATE cert_list_version SET n = n + 1 WHERE id = 1;
END;
`,
};
