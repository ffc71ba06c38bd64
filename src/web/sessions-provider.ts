import type { LiveSession } from '../openvpn/sessions-provider.js';

/**
 * Live VPN sessions as the web app sees them. The real provider sits on the OpenVPN management
 * interface (src/openvpn/management-client.ts); the web app only needs these two calls, so tests
 * and the "server not connected" case need no openvpn at all.
 */
/** A live session: the shape the management interface gives (cid is the handle for `disconnect`). */
export type Session = LiveSession;

export interface SessionsProvider {
  list(): Promise<Session[]>;
  /** Ends the session (`client-kill <cid> HALT`); NotFound when the id is not connected. */
  disconnect(cid: string): Promise<void>;
}
