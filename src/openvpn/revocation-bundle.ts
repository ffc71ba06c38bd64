/**
 * What a revocation publisher hands to an agent beside the running openvpn: the signed CRL and
 * enough about each revoked certificate to find its live sessions (the management interface
 * lists sessions by common name, not by serial).
 */
export interface RevokedCertInfo {
  serial: string;
  commonName: string;
  revokedAt: string; // ISO-8601
}

export interface RevocationBundle {
  crlNumber: number;
  crlPem: string;
  revoked: RevokedCertInfo[];
  /**
   * Common names that also have a currently valid certificate (a device re-issued after a revoke).
   * Sessions with these names are killed without HALT: the revoked one fails its reconnect on the
   * new CRL, the valid one reconnects transparently.
   */
  reissuedCommonNames: string[];
}

/** Where a new bundle goes after every revocation and CRL re-sign (file in local mode, Secret in cluster mode). */
export interface CrlPublisher {
  readonly name: string;
  publish(bundle: RevocationBundle): Promise<void>;
  /**
   * Starts getting ready for the next publish (load a client, read credentials, learn the API) without
   * waiting, so that the publish itself costs only its write. Never throws: a failure shows at publish.
   */
  prepare?(): void;
}
