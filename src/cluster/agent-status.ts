/**
 * Both ends of "the agent reports back" in cluster mode. In the pod, ConfigMapAgentReporter patches the
 * `podgate-agent-status` ConfigMap (the only thing the agent may write). On the manager side,
 * syncAgentStatus turns what it finds there into `revocation.effective` audit rows, once per serial.
 */
import type { AgentReporter, AppliedReport, PendingReport } from '../openvpn/agent.js';
import type { AuditStore } from '../store/types.js';
import { logger } from '../lib/logger.js';
import type { KubeApi, ObjectRef } from './kube-api.js';
import { OBJECT_NAMES, STATUS_KEYS } from './pod-layout.js';

const log = logger.child({ module: 'cluster.agent-status' });

/** How many recent effective revocations the ConfigMap keeps (the manager may poll rarely). */
const KEEP = 100;

export interface EffectiveRevocation {
  serial: string;
  commonName: string;
  revokedAt: string;
  effectiveAt: string;
  crlNumber: number;
  sessionsKilled: number;
}

export interface AgentStatus {
  lastAppliedCrlNumber?: number;
  lastAppliedAt?: string;
  pod?: string;
  effective: EffectiveRevocation[];
  pending: { serial: string; commonName: string; crlNumber: number; error: string }[];
}

export function statusRef(namespace: string): ObjectRef {
  return { apiVersion: 'v1', kind: 'ConfigMap', namespace, name: OBJECT_NAMES.agentStatus };
}

function parseJson<T>(text: string | undefined, fallback: T): T {
  try {
    return text ? (JSON.parse(text) as T) : fallback;
  } catch {
    return fallback;
  }
}

/** Reads the status ConfigMap; empty when it does not exist yet. */
export async function readAgentStatus(kube: KubeApi, namespace: string): Promise<AgentStatus> {
  const cm = await kube.get(statusRef(namespace));
  const d = (cm?.data ?? {}) as Record<string, string>;
  const n = Number(d[STATUS_KEYS.crlNumber]);
  return {
    lastAppliedCrlNumber: Number.isFinite(n) && d[STATUS_KEYS.crlNumber] !== undefined ? n : undefined,
    lastAppliedAt: d[STATUS_KEYS.appliedAt],
    pod: d[STATUS_KEYS.pod],
    effective: parseJson(d[STATUS_KEYS.revoked], []),
    pending: parseJson(d[STATUS_KEYS.pending], []),
  };
}

/** The agent sidecar's reporter. */
export class ConfigMapAgentReporter implements AgentReporter {
  private effective: EffectiveRevocation[] | undefined;

  constructor(
    private readonly kube: KubeApi,
    private readonly namespace: string,
    private readonly podName = '',
  ) {}

  async applied(r: AppliedReport): Promise<void> {
    // Keep what earlier agents (previous pods) reported, so the manager misses nothing between polls.
    this.effective ??= (await readAgentStatus(this.kube, this.namespace)).effective;
    const at = r.appliedAt.toISOString();
    const fresh = r.revoked.map((rev) => ({
      serial: rev.serial,
      commonName: rev.commonName,
      revokedAt: rev.revokedAt,
      effectiveAt: at,
      crlNumber: r.crlNumber,
      sessionsKilled: r.killed.filter((k) => k.commonName === rev.commonName).length,
    }));
    const seen = new Set(fresh.map((f) => f.serial));
    this.effective = [...fresh, ...this.effective.filter((e) => !seen.has(e.serial))].slice(0, KEEP);
    await this.kube.mergePatch(statusRef(this.namespace), {
      data: {
        [STATUS_KEYS.crlNumber]: String(r.crlNumber),
        [STATUS_KEYS.appliedAt]: at,
        [STATUS_KEYS.pod]: this.podName,
        [STATUS_KEYS.revoked]: JSON.stringify(this.effective),
        [STATUS_KEYS.pending]: '[]',
      },
    });
  }

  async pending(p: PendingReport): Promise<void> {
    const pending = p.revoked.map((r) => ({
      serial: r.serial,
      commonName: r.commonName,
      crlNumber: p.crlNumber,
      error: p.error,
    }));
    await this.kube.mergePatch(statusRef(this.namespace), {
      data: { [STATUS_KEYS.pending]: JSON.stringify(pending) },
    });
  }
}

/**
 * Writes one `revocation.effective` audit row (time = when the agent applied it) for every serial the
 * agent reported that has no such row yet. Returns the rows written.
 */
export async function syncAgentStatus(
  kube: KubeApi,
  namespace: string,
  audit: AuditStore,
): Promise<EffectiveRevocation[]> {
  const status = await readAgentStatus(kube, namespace);
  if (status.effective.length === 0) return [];
  const known = new Set(
    (await audit
          .listAudit({ action: 'revocation.effective', limit: 1000 }))
      .map((e) => String((e.details as { serial?: string }).serial ?? '')),
  );
  const written: EffectiveRevocation[] = [];
  for (const e of [...status.effective].reverse()) {
    if (known.has(e.serial)) continue;
    await audit.appendAudit({
      actor: 'agent',
      action: 'revocation.effective',
      target: e.commonName,
      result: 'ok',
      time: new Date(e.effectiveAt),
      details: {
        serial: e.serial,
        crlNumber: e.crlNumber,
        effectiveAt: e.effectiveAt,
        revokedAt: e.revokedAt,
        latencyMs: Date.parse(e.effectiveAt) - Date.parse(e.revokedAt),
        sessionsKilled: e.sessionsKilled,
        pod: status.pod,
      },
    });
    written.push(e);
  }
  if (written.length > 0)
    log.info({ serials: written.map((w) => w.serial) }, 'revocations effective in the cluster');
  return written;
}
