import type { Migration } from './migration.js';

/**
 * CA rotation: which CA issued each certificate (the CA's subject key identifier in hex). NULL means the
 * current CA; `podgate ca rotate` fills in the outgoing CA's id on every NULL row before it switches, so a
 * revocation goes into the CRL of the CA that issued the certificate.
 */
export const migration007: Migration = {
  version: 7,
  name: 'issuer-ski',
  up: `
ALTER TABLE certificates ADD COLUMN issuer_ski TEXT;
CREATE INDEX certificates_issuer_ski ON certificates (issuer_ski) WHERE issuer_ski IS NOT NULL;
`,
};
