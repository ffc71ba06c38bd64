import type { Migration } from './migration.js';

/**
 * One-use import links (`openvpn://import-profile/…`): only the sha256 of the token is kept, the
 * profile is made when the link is fetched. And the VPN session history: one row per openvpn session
 * (replica + client id + start), updated while it lasts and closed with an end reason.
 */
export const migration009: Migration = {
  version: 9,
  name: 'import-links-session-history',
  up: `
CREATE TABLE import_links (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash  TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
  device_name TEXT    NOT NULL CHECK (length(device_name) > 0),
  key_type    TEXT,
  created_at  TEXT    NOT NULL,
  created_ip  TEXT    NOT NULL,
  expires_at  TEXT    NOT NULL,
  used_at     TEXT,
  used_ip     TEXT,
  cert_serial TEXT
) STRICT;
CREATE INDEX import_links_user ON import_links (user_id);
CREATE INDEX import_links_expires_at ON import_links (expires_at);

CREATE TABLE vpn_sessions (
  id              INTEGER PRIMARY KEY,
  replica         TEXT    NOT NULL,
  client_id       INTEGER NOT NULL,
  common_name     TEXT    NOT NULL,
  serial          TEXT,
  user_name       TEXT,
  device_name     TEXT,
  real_address    TEXT    NOT NULL,
  virtual_address TEXT    NOT NULL,
  started_at      TEXT    NOT NULL,
  last_seen_at    TEXT    NOT NULL,
  ended_at        TEXT,
  bytes_in        INTEGER NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
  bytes_out       INTEGER NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
  end_reason      TEXT,
  UNIQUE (replica, client_id, started_at)
) STRICT;
CREATE INDEX vpn_sessions_open ON vpn_sessions (replica) WHERE ended_at IS NULL;
CREATE INDEX vpn_sessions_started ON vpn_sessions (started_at);
CREATE INDEX vpn_sessions_user ON vpn_sessions (user_name, started_at);
`,
};
