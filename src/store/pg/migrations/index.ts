import type { Migration } from '../../migrations/migration.js';
import { pgMigration001 } from './001-schema.js';
import { pgMigration003 } from './003-list-indexes.js';
import { pgMigration002 } from './002-shared-files-version.js';
import { pgMigration004 } from './004-cert-list-version.js';

/**
 * PostgreSQL schema steps, numbered on their own (PostgreSQL step 1 holds everything of SQLite 001-013).
 * Append new steps; a change to the SQLite schema gets its PostgreSQL step in the same commit.
 */
export const pgMigrations: readonly Migration[] = [
  pgMigration001,
  pgMigration002,
  pgMigration003,
  pgMigration004,
];
