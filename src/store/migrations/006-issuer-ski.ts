import type { Migration } from './migration.js';

/**
 * CA rotation: which CA issued each certificate (the CA's subject key identifier in hex), so a revocation
 * goes into the CRL of the CA that issued it. New rows always carry it; rows from before this step are
 * NULL (the only CA there was), and `podgate ca rotate` fills in the outgoing CA's id on them.
 */
export const migration006: Migration = {
  version: 6,
  name: 'issuer-ski',
  up: `
ALTER TABLE certificates ADD COLUMN issuer_ski TEXT;
CREATE INDEX certificates_issuer_ski ON certificates (issuer_ski) WHERE issuer_ski IS NOT NULL;
`,
};
