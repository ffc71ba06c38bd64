/**
 * Parser for the management command `status 3` (tab-separated). Columns are read by the names in the
 * HEADER lines when present, so an extra column in a future openvpn does not shift the fields; without a
 * header the order of openvpn 2.6 is assumed: CN, real address, virtual v4, virtual v6, bytes in,
 * bytes out, since, since (time_t), username, client ID, peer ID, cipher.
 */
import { Upstream } from '../lib/errors.js';

/** One live client session. Several sessions may share a common name. */
export interface ClientSession {
  commonName: string;
  realAddress: string;
  virtualAddress: string;
  virtualIpv6Address: string;
  bytesReceived: number;
  bytesSent: number;
  connectedSince: Date;
  username: string;
  /** The management client ID (CID) that `client-kill` takes. */
  clientId: number;
  peerId: number;
  cipher: string;
}

export interface RoutingEntry {
  virtualAddress: string;
  commonName: string;
  realAddress: string;
  lastRef: Date;
}

export interface ServerStatus {
  title: string;
  time: Date | undefined;
  /** Sessions past their TLS handshake: a certificate checked, a common name known. */
  clients: ClientSession[];
  /**
   * Connections still in their TLS handshake (openvpn lists them with the common name `UNDEF` and no
   * tunnel address): not sessions yet. The certificate is checked (CRL, ccd-exclusive) at the end of the
   * handshake; one that fails never becomes a session.
   */
  handshaking: ClientSession[];
  routes: RoutingEntry[];
  /** GLOBAL_STATS name -> value ("Max bcast/mcast queue length", "dco_enabled", ...). */
  globalStats: Record<string, string>;
  /** True when the data channel is offloaded to the kernel (GLOBAL_STATS dco_enabled = 1). */
  dcoEnabled: boolean;
}

const DEFAULT_HEADERS: Record<string, string[]> = {
  CLIENT_LIST: [
    'Common Name',
    'Real Address',
    'Virtual Address',
    'Virtual IPv6 Address',
    'Bytes Received',
    'Bytes Sent',
    'Connected Since',
    'Connected Since (time_t)',
    'Username',
    'Client ID',
    'Peer ID',
    'Data Channel Cipher',
  ],
  ROUTING_TABLE: ['Virtual Address', 'Common Name', 'Real Address', 'Last Ref', 'Last Ref (time_t)'],
};

/** The common name openvpn lists for a connection whose TLS handshake has not completed. */
export const HANDSHAKING = 'UNDEF';

function fromTimeT(value: string | undefined): Date {
  const n = Number(value);
  return new Date(Number.isFinite(n) ? n * 1000 : NaN);
}

function num(value: string | undefined): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : NaN;
}

/** Parses the reply lines of `status 3` (without the final END). Throws Upstream when it is not one. */
export function parseStatus3(lines: readonly string[]): ServerStatus {
  const headers: Record<string, string[]> = { ...DEFAULT_HEADERS };
  const status: ServerStatus = {
    title: '',
    time: undefined,
    clients: [],
    handshaking: [],
    routes: [],
    globalStats: {},
    dcoEnabled: false,
  };
  let recognised = false;
  for (const line of lines) {
    const cols = line.split('\t');
    const kind = cols[0];
    const get = (row: string[], name: string): string | undefined => {
      const i = headers[kind!]?.indexOf(name) ?? -1;
      return i >= 0 ? row[i + 1] : undefined;
    };
    switch (kind) {
      case 'TITLE':
        status.title = cols[1] ?? '';
        recognised = true;
        break;
      case 'TIME':
        status.time = fromTimeT(cols[2]);
        break;
      case 'HEADER':
        if (cols[1]) headers[cols[1]] = cols.slice(2);
        break;
      case 'CLIENT_LIST': {
        const commonName = get(cols, 'Common Name') ?? '';
        (commonName === HANDSHAKING ? status.handshaking : status.clients).push({
          commonName,
          realAddress: get(cols, 'Real Address') ?? '',
          virtualAddress: get(cols, 'Virtual Address') ?? '',
          virtualIpv6Address: get(cols, 'Virtual IPv6 Address') ?? '',
          bytesReceived: num(get(cols, 'Bytes Received')),
          bytesSent: num(get(cols, 'Bytes Sent')),
          connectedSince: fromTimeT(get(cols, 'Connected Since (time_t)')),
          username: get(cols, 'Username') ?? '',
          clientId: num(get(cols, 'Client ID')),
          peerId: num(get(cols, 'Peer ID')),
          cipher: get(cols, 'Data Channel Cipher') ?? '',
        });
        break;
      }
      case 'ROUTING_TABLE':
        status.routes.push({
          virtualAddress: get(cols, 'Virtual Address') ?? '',
          commonName: get(cols, 'Common Name') ?? '',
          realAddress: get(cols, 'Real Address') ?? '',
          lastRef: fromTimeT(get(cols, 'Last Ref (time_t)')),
        });
        break;
      case 'GLOBAL_STATS':
        if (cols[1] !== undefined) status.globalStats[cols[1]] = cols[2] ?? '';
        break;
      default:
        break;
    }
  }
  if (!recognised) throw new Upstream('openvpn management: reply to "status 3" has no TITLE line');
  status.dcoEnabled = status.globalStats['dco_enabled'] === '1';
  return status;
}

/** The sessions of one common name (a device reconnecting may briefly have two). */
export function sessionsOf(status: ServerStatus, commonName: string): ClientSession[] {
  return status.clients.filter((c) => c.commonName === commonName);
}
