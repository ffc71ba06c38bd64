/**
 * The names of the transaction-scoped locks (`tx.lock(name)`), all in one place: two call sites
 * cannot share a name by accident, nor use two names for one thing. On PostgreSQL a name becomes
 * `pg_advisory_xact_lock(hashtext(name))`, so the text is part of the protocol between replicas:
 * replicas of two releases run side by side during a rolling update and must still exclude each
 * other. Never change a name; add new ones.
 */
export const LOCK = {
  /** Schema steps (PostgreSQL's migration transaction). */
  schema: 'podgate.schema',
  /** The data-dir files kept in the database (CA certificates and encrypted keys). */
  sharedFiles: 'podgate.shared_files',
  /** The CRL number: read to write the next one. */
  crl: 'podgate.crl',
  /** Tunnel address allocation (the lowest free address must not be handed out twice). */
  addresses: 'podgate.device_addresses',
  /** Issue under one common name (the owner rule has no constraint of its own). */
  commonName: (commonName: string) => `podgate.cn:${commonName}`,
  /** A setting read in order to write it (also before its row exists). */
  setting: (key: string) => `podgate.setting:${key}`,
  /** Creating the first admin (the name of an earlier setting-key lock, kept for rolling updates). */
  firstAdmin: 'podgate.setting:bootstrap.firstAdmin',
  /** A shared rate-limit window. */
  rate: (scope: string, key: string) => `podgate.rate:${scope}:${key}`,
} as const;
