import type { Migration } from './migration.js';

/**
 * How a certificate was issued: `generated` (podgate made the private key for the download) or `csr`
 * (the device sent a certificate request; the key never left it). Renewing a `csr` device asks for a
 * new request instead of handing out a key made by the server. Rows from before this step are
 * `generated`: podgate did not record it then. (No column name mentions keys: a store test keeps any
 * column that could hold one out.)
 */
export const migration010: Migration = {
  version: 10,
  name: 'issued-from',
  up: `
ALTER TABLE certificates ADD COLUMN issued_from TEXT NOT NULL DEFAULT 'generated'
  CHECK (issued_from IN ('generated', 'csr'));
`,
};
