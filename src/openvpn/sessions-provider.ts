import { NotFound } from '../lib/errors.js';
import { withManagement, type ManagementOptions } from './management-client.js';

/** A live session in the shape the web app's SessionsProvider uses (src/web/sessions-provider.ts). */
export interface LiveSession {
  cid: string;
  commonName: string;
  realAddress: string;
  virtualAddress: string;
  bytesIn: number;
  bytesOut: number;
  connectedSince: Date;
  /** The server replica (pod) holding it, in cluster mode; absent for `server run`'s own. */
  replica?: string;
}

/**
 * Sessions from the management interface, one short connection per call (openvpn serves one management
 * client at a time, and the agent needs it too). Structurally a web SessionsProvider.
 */
export class ManagementSessionsProvider {
  constructor(private readonly opts: ManagementOptions) {}

  async list(): Promise<LiveSession[]> {
    const status = await withManagement(this.opts, (m) => m.status());
    return status.clients.map((c) => ({
      cid: String(c.clientId),
      commonName: c.commonName,
      realAddress: c.realAddress,
      virtualAddress: c.virtualAddress,
      bytesIn: c.bytesReceived,
      bytesOut: c.bytesSent,
      connectedSince: c.connectedSince,
    }));
  }

  /** `client-kill <cid> HALT`; NotFound when no session has that id. */
  async disconnect(cid: string): Promise<void> {
    const id = Number(cid);
    await withManagement(this.opts, async (m) => {
      const status = await m.status();
      if (!Number.isInteger(id) || !status.clients.some((c) => c.clientId === id))
        throw new NotFound(`no live session with id ${cid}`);
      await m.clientKill(id, true);
    });
  }
}
