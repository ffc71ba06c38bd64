import type { Migration } from './migration.js';

/**
 * API tokens get an expiry. Tokens that exist already expire 90 days after this upgrade (not after
 * their creation: scripts that use them keep working for a while and their owners see the date in the
 * token list). Tokens of users who are disabled now are deleted: a disable ends tokens for good.
 */
export const migration004: Migration = {
  version: 4,
  name: 'token-expiry',
  up: `
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
UPDATE api_tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+90 days') WHERE expires_at IS NULL;
DELETE FROM api_tokens WHERE user_id IN (SELECT id FROM users WHERE disabled = 1);
CREATE INDEX api_tokens_expires_at ON api_tokens (expires_at);
`,
};
