import type { Migration } from './migration.js';

/** The tables whose changes alter the access bundle, and what of theirs counts (see the triggers below). */
const BUMP = 'UPDATE access_state SET version = version + 1 WHERE id = 1;';

function bumpOn(name: string, event: string, table: string, when = ''): string {
  return `CREATE TRIGGER access_bump_${name} AFTER ${event} ON ${table}${when ? ` WHEN ${when}` : ''}
BEGIN
  ${BUMP}
END;`;
}

/**
 * Access rules, local groups and stable tunnel addresses.
 *
 * - `access_state.version` is the access bundle's version. Triggers bump it inside the transaction of
 *   every change that alters the bundle (a certificate issued, renewed or revoked, a user disabled or
 *   given another role, a group or its members, single sign-on groups, a rule, an address, the mode),
 *   so no code path can change the bundle and forget the version. `published_version`/`published_hash`
 *   let the publisher bump it once more when only time changed the bundle (a certificate expired).
 * - `device_addresses`: one tunnel address per common name (a common name belongs to one owner for ever,
 *   see certs-repo), unique across devices.
 * - An existing database (it has users) keeps today's behaviour: `access.mode` = `open` is recorded
 *   here. A new one gets `enforce` from `podgate init` / the first start of `serve`.
 */
export const migration008: Migration = {
  version: 8,
  name: 'access',
  up: `
CREATE TABLE access_state (
  id                INTEGER PRIMARY KEY CHECK (id = 1),
  version           INTEGER NOT NULL CHECK (version >= 1),
  published_version INTEGER NOT NULL DEFAULT 0,
  published_hash    TEXT
) STRICT;
INSERT INTO access_state (id, version) VALUES (1, 1);

CREATE TABLE local_groups (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE CHECK (length(name) > 0),
  description TEXT NOT NULL DEFAULT '',
  created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE local_group_members (
  group_id INTEGER NOT NULL REFERENCES local_groups(id) ON DELETE CASCADE,
  user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  added_at TEXT NOT NULL,
  PRIMARY KEY (group_id, user_id)
) STRICT;
CREATE INDEX local_group_members_user ON local_group_members (user_id);

CREATE TABLE access_rules (
  name       TEXT PRIMARY KEY CHECK (length(name) > 0),
  position   INTEGER NOT NULL,
  body       TEXT NOT NULL CHECK (json_valid(body)),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE device_addresses (
  common_name  TEXT PRIMARY KEY CHECK (length(common_name) > 0),
  address      TEXT NOT NULL UNIQUE CHECK (length(address) > 0),
  allocated_at TEXT NOT NULL
) STRICT;

${bumpOn('cert_insert', 'INSERT', 'certificates')}
${bumpOn('cert_update', 'UPDATE OF status, superseded_by, not_after, owner_id', 'certificates')}
${bumpOn('user_update', 'UPDATE OF disabled, role', 'users', 'OLD.disabled IS NOT NEW.disabled OR OLD.role IS NOT NEW.role')}
${bumpOn('user_delete', 'DELETE', 'users')}
${bumpOn('oidc_insert', 'INSERT', 'oidc_identities')}
${bumpOn('oidc_delete', 'DELETE', 'oidc_identities')}
${bumpOn('oidc_groups', 'UPDATE OF groups', 'oidc_identities', 'OLD.groups IS NOT NEW.groups')}
${bumpOn('group_insert', 'INSERT', 'local_groups')}
${bumpOn('group_delete', 'DELETE', 'local_groups')}
${bumpOn('member_insert', 'INSERT', 'local_group_members')}
${bumpOn('member_delete', 'DELETE', 'local_group_members')}
${bumpOn('rule_insert', 'INSERT', 'access_rules')}
${bumpOn('rule_update', 'UPDATE', 'access_rules', 'OLD.body IS NOT NEW.body')}
${bumpOn('rule_delete', 'DELETE', 'access_rules')}
${bumpOn('address_insert', 'INSERT', 'device_addresses')}
${bumpOn('address_update', 'UPDATE', 'device_addresses')}
${bumpOn('address_delete', 'DELETE', 'device_addresses')}
${bumpOn('mode_insert', 'INSERT', 'settings', "NEW.key = 'access.mode'")}
${bumpOn('mode_update', 'UPDATE', 'settings', "NEW.key = 'access.mode' AND OLD.value IS NOT NEW.value")}
${bumpOn('gateway_change', 'UPDATE OF cert_serial', 'gateways')}
${bumpOn('gateway_insert', 'INSERT', 'gateways')}
${bumpOn('gateway_delete', 'DELETE', 'gateways')}

INSERT INTO settings (key, value) SELECT 'access.mode', 'open' WHERE EXISTS (SELECT 1 FROM users);
`,
};
