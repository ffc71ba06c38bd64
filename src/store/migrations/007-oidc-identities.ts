import type { Migration } from './migration.js';

/**
 * Single sign-on: which provider account (issuer + subject) is which podgate user. The subject, not the
 * user-name claim, is the key, so a renamed account at the provider stays the same podgate user.
 * `refresh_token` holds an encrypted envelope (never the token in clear) used by the leaver check.
 */
export const migration007: Migration = {
  version: 7,
  name: 'oidc-identities',
  up: `
CREATE TABLE oidc_identities (
  issuer        TEXT    NOT NULL CHECK (length(issuer) > 0),
  subject       TEXT    NOT NULL CHECK (length(subject) > 0),
  user_id       INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
  groups        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(groups)),
  refresh_token TEXT,
  created_at    TEXT    NOT NULL,
  last_login_at TEXT,
  last_sync_at  TEXT,
  PRIMARY KEY (issuer, subject)
) STRICT;
`,
};
