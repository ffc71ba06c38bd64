import type { Migration } from './migration.js';

/** The agent's queue of revocations still to apply to live sessions, and office gateways. */
export const migration003: Migration = {
  version: 3,
  name: 'agent-gateways',
  up: `
CREATE TABLE pending_revocations (
  serial      TEXT    PRIMARY KEY,
  common_name TEXT    NOT NULL,
  crl_number  INTEGER NOT NULL,
  queued_at   TEXT    NOT NULL
) STRICT;
CREATE INDEX pending_revocations_queued_at ON pending_revocations (queued_at);

CREATE TABLE gateways (
  name        TEXT PRIMARY KEY,
  target      TEXT NOT NULL,
  cert_serial TEXT REFERENCES certificates(serial) ON DELETE RESTRICT,
  status      TEXT NOT NULL,
  details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
  updated_at  TEXT NOT NULL
) STRICT;
`,
};
