import type { Migration } from './migration.js';

/** Web sessions and API tokens (hash only: the secret is shown once and never stored). */
export const migration002: Migration = {
  version: 2,
  name: 'sessions-tokens',
  up: `
CREATE TABLE sessions (
  sid        TEXT PRIMARY KEY,
  user_id    INTEGER REFERENCES users(id) ON DELETE CASCADE,
  data       TEXT NOT NULL,
  expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE api_tokens (
  id           INTEGER PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name         TEXT    NOT NULL,
  token_hash   TEXT    NOT NULL UNIQUE CHECK (length(token_hash) > 0),
  created_at   TEXT    NOT NULL,
  last_used_at TEXT
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);
`,
};
