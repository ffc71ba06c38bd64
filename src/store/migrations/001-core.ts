import type { Migration } from './migration.js';

/**
 * Users, certificates, CRL state, audit log, settings. Times are ISO-8601 UTC text (sortable as text).
 * There is deliberately no column for private keys: they are generated for one download and never stored.
 */
export const migration001: Migration = {
  version: 1,
  name: 'core',
  up: `
CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  name          TEXT    NOT NULL UNIQUE CHECK (length(name) > 0),
  role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
  password_hash TEXT,
  disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at    TEXT    NOT NULL
) STRICT;

CREATE TABLE certificates (
  serial            TEXT PRIMARY KEY
                    CHECK (length(serial) > 0 AND length(serial) % 2 = 0 AND serial NOT GLOB '*[^0-9A-F]*'),
  common_name       TEXT NOT NULL CHECK (length(common_name) > 0),
  owner_id          INTEGER REFERENCES users(id) ON DELETE RESTRICT,
  device_name       TEXT NOT NULL,
  kind              TEXT NOT NULL CHECK (kind IN ('client', 'server', 'gateway')),
  key_type          TEXT NOT NULL,
  not_before        TEXT NOT NULL,
  not_after         TEXT NOT NULL,
  status            TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
  revoked_at        TEXT,
  revocation_reason TEXT CHECK (revocation_reason IN ('unspecified', 'keyCompromise', 'caCompromise',
                      'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold',
                      'privilegeWithdrawn')),
  cert_pem          TEXT NOT NULL,
  created_at        TEXT NOT NULL,
  last_seen_at      TEXT,
  -- a revoked row always says when and why; a valid row never does
  CHECK ((status = 'valid' AND revoked_at IS NULL AND revocation_reason IS NULL)
      OR (status = 'revoked' AND revoked_at IS NOT NULL AND revocation_reason IS NOT NULL))
) STRICT;

-- at most one valid certificate per common name: OpenVPN identifies sessions by common name
CREATE UNIQUE INDEX certificates_valid_common_name ON certificates (common_name) WHERE status = 'valid';
CREATE INDEX certificates_common_name ON certificates (common_name);
CREATE INDEX certificates_owner ON certificates (owner_id);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_created_at ON certificates (created_at);
CREATE INDEX certificates_status_not_after ON certificates (status, not_after);

-- a revocation is final: the CRL already published it
CREATE TRIGGER certificates_no_unrevoke BEFORE UPDATE OF status ON certificates
WHEN OLD.status = 'revoked' AND NEW.status <> 'revoked'
BEGIN
  SELECT RAISE(ABORT, 'a revoked certificate cannot become valid again');
END;

CREATE TABLE crl_state (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  number      INTEGER NOT NULL CHECK (number >= 0),
  pem         TEXT    NOT NULL,
  this_update TEXT    NOT NULL,
  next_update TEXT    NOT NULL
) STRICT;

CREATE TABLE audit_log (
  id      INTEGER PRIMARY KEY,
  time    TEXT NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  target  TEXT NOT NULL,
  result  TEXT NOT NULL CHECK (result IN ('ok', 'error', 'pending')),
  details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
) STRICT;
CREATE INDEX audit_log_action ON audit_log (action);
CREATE INDEX audit_log_target ON audit_log (target);

-- append-only: history is evidence, so the database itself refuses to rewrite it
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
`,
};
