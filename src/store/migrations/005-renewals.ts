import type { Migration } from './migration.js';

/**
 * Device renewal: a renewed certificate stays valid beside its successor until `supersede_at`, then it is
 * revoked as `superseded`. Only the current certificate of a common name (valid, not superseded) must be
 * unique, so the unique index is narrowed. `superseded_by` has no foreign key: the old row is marked in the
 * same transaction that inserts the new one, before it exists.
 */
export const migration005: Migration = {
  version: 5,
  name: 'renewals',
  up: `
ALTER TABLE certificates ADD COLUMN superseded_by TEXT;
ALTER TABLE certificates ADD COLUMN supersede_at TEXT;
DROP INDEX certificates_valid_common_name;
CREATE UNIQUE INDEX certificates_current_common_name ON certificates (common_name)
  WHERE status = 'valid' AND superseded_by IS NULL;
CREATE INDEX certificates_supersede_at ON certificates (supersede_at)
  WHERE status = 'valid' AND supersede_at IS NOT NULL;
`,
};
