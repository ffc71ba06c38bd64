import { logger } from '../lib/logger.js';
import type {
  CertStore,
  LiveSessionSample,
  SessionEndReason,
  SessionHistoryStore,
  UserStore,
} from '../store/types.js';
import type { ClientSession } from './status.js';

const log = logger.child({ module: 'session-recorder' });

export type RecorderStore = SessionHistoryStore &
  Pick<CertStore, 'getValidCertByCommonName' | 'getCert'> &
  Pick<UserStore, 'getUserById'>;

/**
 * Turns successive `status 3` readings of one openvpn (a "replica": the host or pod it runs in) into
 * the session history: a session is recorded the first time it is seen, its bytes are updated at every
 * reading, and it is closed at the first reading that no longer has it. Why it ended is what the store
 * can say afterwards: its certificate revoked, its owner disabled; else `ended` (client quit, keepalive
 * timeout and an admin's disconnect look the same in a status list). The bytes of the last interval
 * before a session ends are not seen.
 */
export class SessionRecorder {
  constructor(
    private readonly store: RecorderStore,
    readonly replica: string,
  ) {}

  private async sample(c: ClientSession): Promise<LiveSessionSample> {
    const cert = await this.store.getValidCertByCommonName(c.commonName);
    return {
      clientId: c.clientId,
      commonName: c.commonName,
      serial: cert?.serial ?? null,
      userName: cert?.ownerName ?? null,
      deviceName: cert?.deviceName ?? null,
      realAddress: c.realAddress,
      virtualAddress: c.virtualAddress,
      startedAt: c.connectedSince,
      bytesIn: c.bytesReceived,
      bytesOut: c.bytesSent,
    };
  }

  private async reasonFor(serial: string | null): Promise<SessionEndReason> {
    const cert = serial ? await this.store.getCert(serial) : undefined;
    if (cert?.status === 'revoked') return 'revoked';
    const owner = cert?.ownerId ? await this.store.getUserById(cert.ownerId) : undefined;
    if (owner?.disabled) return 'disabled';
    return 'ended';
  }

  /** Records one reading taken at `at`; sessions recorded before and missing now are closed. */
  async record(clients: readonly ClientSession[], at: Date): Promise<void> {
    const live = clients.filter(
      (c) => Number.isInteger(c.clientId) && !Number.isNaN(c.connectedSince.getTime()),
    );
    await this.store.recordSessions(
      this.replica,
      await Promise.all(live.map((c) => this.sample(c))),
      at,
    );
    const seen = new Set(live.map((c) => `${c.clientId}|${c.connectedSince.toISOString()}`));
    for (const open of await this.store.listOpenSessions(this.replica)) {
      if (seen.has(`${open.clientId}|${open.startedAt.toISOString()}`)) continue;
      const reason = await this.reasonFor(open.serial);
      await this.store.endSession(open.id, reason, at);
      log.info(
        { commonName: open.commonName, reason, bytesIn: open.bytesIn, bytesOut: open.bytesOut },
        'session ended',
      );
    }
  }

  /** Closes every open session of this replica (openvpn restarted or stopped); they end at their last reading. */
  async closeAll(reason: 'server-restart' | 'server-stop'): Promise<number> {
    const open = await this.store.listOpenSessions(this.replica);
    for (const s of open) await this.store.endSession(s.id, reason);
    if (open.length > 0) log.info({ count: open.length, reason }, 'open sessions closed');
    return open.length;
  }
}
