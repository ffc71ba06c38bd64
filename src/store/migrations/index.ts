import { migration001 } from './001-core.js';
import { migration002 } from './002-sessions-tokens.js';
import { migration003 } from './003-agent-gateways.js';
import { migration004 } from './004-token-expiry.js';
import { migration005 } from './005-renewals.js';
import { migration006 } from './006-issuer-ski.js';
import { migration007 } from './007-oidc-identities.js';
import { migration008 } from './008-access.js';
import { migration009 } from './009-import-links-session-history.js';
import { migration010 } from './010-issued-from.js';
import { migration013 } from './013-cert-list-indexes.js';
import { migration014 } from './014-cert-list-version.js';
import type { Migration } from './migration.js';

export type { Migration } from './migration.js';

/**
 * Every schema step in increasing version order. Append new ones at the end; never reorder or edit
 * released ones. Numbers are assigned per feature branch, so a branch may leave gaps that a merge fills.
 */
export const migrations: readonly Migration[] = [
  migration001,
  migration002,
  migration003,
  migration004,
  migration005,
  migration006,
  migration007,
  migration008,
  migration009,
  migration010,
  migration013,
  migration014,
];
