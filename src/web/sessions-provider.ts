/**
 * Live VPN sessions as the web app sees them. The real provider sits on the OpenVPN management
 * interface (src/openvpn/management-client.ts); the web app only needs these two calls, so tests
 * and the "server not connected" case need no openvpn at all.
 */
export interface Session {
  /** Management-interface client id, the handle for `disconnect`. */
  cid: string;
  commonName: string;
  /** Where the client connects from, e.g. "203.0.113.7:51234". */
  realAddress: string;
  /** Address inside the VPN subnet, empty while the client is still negotiating. */
  virtualAddress: string;
  bytesIn: number;
  bytesOut: number;
  connectedSince: Date;
}

export interface SessionsProvider {
  list(): Promise<Session[]>;
  /** Ends the session (`client-kill <cid> HALT`); NotFound when the id is not connected. */
  disconnect(cid: string): Promise<void>;
}
