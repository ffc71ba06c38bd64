import { migration001 } from './001-core.js';
import { migration002 } from './002-sessions-tokens.js';
import { migration003 } from './003-agent-gateways.js';
import { migration004 } from './004-token-expiry.js';
import { migration006 } from './006-renewals.js';
import { migration007 } from './007-issuer-ski.js';
import type { Migration } from './migration.js';

export type { Migration } from './migration.js';

/**
 * Version 5 belongs to another branch (merged separately). Until it lands, this branch holds an
 * empty step in its place so the list stays gapless. MERGE: replace it with the real 005.
 */
const reservedOnThisBranch = (version: number): Migration => ({
  version,
  name: `reserved-${version}`,
  up: 'SELECT 1;',
});

/** Every schema step in order. Append new ones at the end; never reorder or edit released ones. */
export const migrations: readonly Migration[] = [
  migration001,
  migration002,
  migration003,
  migration004,
  reservedOnThisBranch(5),
  migration006,
  migration007,
];
