import type { AuditStore, PendingStore } from '../store/types.js';
import type { AgentReporter, AppliedReport, PendingReport } from './agent.js';

/**
 * Local mode's reporter: one `revocation.effective` audit row per certificate with the time it took
 * effect (and how long after the revocation), `revocation.pending` rows and PendingStore entries while
 * the management interface is down.
 */
export class StoreAgentReporter implements AgentReporter {
  constructor(private readonly store: AuditStore & PendingStore) {}

  async applied(r: AppliedReport): Promise<void> {
    for (const rev of r.revoked) {
      const killed = r.killed.filter((k) => k.commonName === rev.commonName);
      await this.store.appendAudit({
        actor: 'agent',
        action: 'revocation.effective',
        target: rev.commonName,
        result: 'ok',
        time: r.appliedAt,
        details: {
          serial: rev.serial,
          crlNumber: r.crlNumber,
          effectiveAt: r.appliedAt.toISOString(),
          revokedAt: rev.revokedAt,
          latencyMs: r.appliedAt.getTime() - Date.parse(rev.revokedAt),
          sessionsKilled: killed.length,
          halt: killed.every((k) => k.halt),
        },
      });
    }
    await this.store.clearPending(r.revoked.map((x) => x.serial));
  }

  async pending(p: PendingReport): Promise<void> {
    for (const rev of p.revoked) {
      await this.store.addPending({
        serial: rev.serial,
        commonName: rev.commonName,
        crlNumber: p.crlNumber,
        queuedAt: p.queuedAt,
      });
      await this.store.appendAudit({
        actor: 'agent',
        action: 'revocation.pending',
        target: rev.commonName,
        result: 'pending',
        details: { serial: rev.serial, crlNumber: p.crlNumber, error: p.error },
      });
    }
  }
}
