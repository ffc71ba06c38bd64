import type { Migration } from '../../migrations/migration.js';

/**
 * Sort by status without a filter read every row on PostgreSQL: the tie-break is the serial, and the
 * index on (status) alone left all rows to sort. (status, serial) gives the order as stored.
 */
export const pgMigration003: Migration = {
  version: 3,
  name: 'list-indexes',
  up: `
CREATE INDEX certificates_status_serial ON certificates (status, serial);
`,
};
