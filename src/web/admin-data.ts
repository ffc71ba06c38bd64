import { AppError, BadRequest } from '../lib/errors.js';
import { caStatus, type CaStatus } from '../services/ca-status.js';
import { decodeCursor, encodeCursor, type ListPage } from './pagination.js';
import { markInvisible, markInvisibleDeep } from '../lib/visible-text.js';
import type { AppContext } from '../services/context.js';
import type { AuditEntry, User } from '../store/types.js';
import type { DeployState, DeployTracker } from './deploy-tracker.js';
// status.js, not index.js: the index loads the Kubernetes client (~70 MB resident) even when unused.
import { formatStatus, type ClusterStatus } from '../cluster/status.js';
import type { DiscoveryResult } from '../cluster/discovery.js';
import { describeDiscovery, manifestsText, type ClusterPort, type DiscoveryRow } from './cluster-port.js';
import type { SessionsProvider, Session } from './sessions-provider.js';

/** 503 when the VPN server's management interface is not wired in (e.g. `serve` without a server). */
export class NotConnected extends AppError {
  constructor(what = 'VPN server') {
    super(503, 'not_connected', `${what} not connected`);
  }
}

/** Names in the log may be attacker-chosen (a failed sign-in): controls and bidi marks are shown as marks. */
function shownAudit(e: AuditEntry): AuditEntry {
  return {
    ...e,
    actor: markInvisible(e.actor),
    action: markInvisible(e.action),
    target: markInvisible(e.target),
    details: markInvisibleDeep(e.details) as Record<string, unknown>,
  };
}

/** Read-only admin views shared by the pages and the API. */
export class AdminData {
  constructor(
    private readonly ctx: AppContext,
    private readonly sessions: SessionsProvider | undefined,
    private readonly cluster: ClusterPort | undefined,
    private readonly now: () => Date,
  ) {}

  /** Local groups, and each user's memberships by source (local, single sign-on, built-in). */
  groups(): {
    groups: ReturnType<AppContext['groups']['list']>;
    of: (u: User) => ReturnType<AppContext['groups']['membershipsOf']>;
  } {
    return { groups: this.ctx.groups.list(), of: (u) => this.ctx.groups.membershipsOf(u) };
  }

  /** The tunnel address of a device, if it has one. */
  async addressOf(commonName: string): Promise<string | undefined> {
    return (await this.ctx.addresses.get(commonName))?.address;
  }

  get sessionsConnected(): boolean {
    return this.sessions !== undefined;
  }

  get clusterConnected(): boolean {
    return this.cluster !== undefined;
  }

  async listSessions(): Promise<(Session & { owner: string | null })[]> {
    if (!this.sessions) throw new NotConnected();
    const list = await this.sessions.list();
    const out: (Session & { owner: string | null })[] = [];
    for (const s of list) {
      const cert = await this.ctx.store.getValidCertByCommonName(s.commonName);
      out.push({ ...s, owner: cert?.ownerName ?? null });
    }
    return out;
  }

  async disconnect(actor: string, cid: string): Promise<void> {
    if (!this.sessions) throw new NotConnected();
    await this.sessions.disconnect(cid);
    await this.ctx.store.appendAudit({
      actor,
      action: 'session.disconnect',
      target: cid,
      result: 'ok',
      details: {},
    });
  }

  async audit(page: number, action?: string): Promise<{ items: AuditEntry[]; page: number; hasNext: boolean; }> {
    const perPage = 50;
    const rows = await this.ctx.store.listAudit({
        limit: perPage + 1,
        offset: (page - 1) * perPage,
        ...(action ? { action } : {}),
    });
    return { items: rows.slice(0, perPage).map(shownAudit), page, hasNext: rows.length > perPage };
  }

  /**
   * The audit log for the API, newest first: a keyset page (the cursor holds the last entry's id, so
   * a deep page costs what the first one does, and entries appended meanwhile do not shift it).
   */
  async auditPage(q: { limit: number; cursor?: string; action?: string }): Promise<ListPage<AuditEntry>> {
    let beforeId: number | undefined;
    if (q.cursor !== undefined) {
      const b = decodeCursor(q.cursor).b;
      if (typeof b !== 'number' || !Number.isInteger(b) || b < 1)
        throw new BadRequest(
          'cursor is not one this API handed out (pass nextCursor back as it is)',
          'cursor',
        );
      beforeId = b;
    }
    const filter = q.action ? { action: q.action } : {};
    const rows = await this.ctx.store.listAudit({ limit: q.limit + 1, beforeId, ...filter });
    const items = rows.slice(0, q.limit).map(shownAudit);
    const last = items[items.length - 1];
    return {
      items,
      total: await this.ctx.store.countAudit(filter),
      nextCursor: rows.length > q.limit && last ? encodeCursor({ b: last.id }) : null,
    };
  }

  /** The CAs in force and, during a rotation, the devices still on the previous CA (`GET /api/v1/ca`). */
  async caView(): Promise<Omit<CaStatus, 'onPreviousCa'> & {
      onPreviousCa: { serial: string; commonName: string; owner: string | null; }[];
  }> {
    const s = await caStatus(this.ctx);
    return {
      ...s,
      onPreviousCa: s.onPreviousCa.map((c) => ({
        serial: c.serial,
        commonName: c.commonName,
        owner: c.ownerName,
      })),
    };
  }

  async crl(): Promise<{
      number: number | null;
      thisUpdate: Date | null;
      nextUpdate: Date | null;
      revoked: number;
      expiresInDays: number | null;
  }> {
    const crl = await this.ctx.store.getCrl();
    const revoked = (await this.ctx.store.listCerts({ status: 'revoked', limit: 0 })).total;
    return {
      number: crl?.number ?? null,
      thisUpdate: crl?.thisUpdate ?? null,
      nextUpdate: crl?.nextUpdate ?? null,
      revoked,
      expiresInDays: crl ? Math.floor((crl.nextUpdate.getTime() - this.now().getTime()) / 86_400_000) : null,
    };
  }

  gateways(): ReturnType<AppContext['store']['listGateways']> {
    return this.ctx.store.listGateways();
  }

  /** The last discovery as rows (name, value, source) plus overlap warnings. */
  async clusterView(): Promise<{
      connected: boolean;
      namespace: string;
      rows: DiscoveryRow[];
      warnings: string[];
      at?: string;
      raw: DiscoveryResult | null;
  }> {
    const namespace = this.ctx.config.kubernetes.namespace;
    if (!this.cluster) return { connected: false, namespace, rows: [], warnings: [], raw: null };
    const last = await this.cluster.lastDiscovery();
    return { connected: true, namespace, ...describeDiscovery(last), raw: last ?? null };
  }

  /** The user's valid certificates (what disabling them revokes). */
  async validCertsOf(userId: number): Promise<{ serial: string; commonName: string; }[]> {
    return (await this.ctx.store
        .listCerts({ ownerId: userId, status: 'valid', sort: 'commonName', order: 'asc' }))
      .items.map((c) => ({ serial: c.serial, commonName: c.commonName }));
  }

  async users(): Promise<User[]> {
    return await this.ctx.users.list();
  }

  /** Starts a deploy in the background and records who asked for it and how it ended. */
  startDeploy(deploys: DeployTracker, actor: string, o: { takeOver?: boolean } = {}): DeployState {
    const cluster = this.requireCluster();
    // takeOver: replace objects another manager's CA owns (podgate.io/ca-key-id), like `k8s deploy --take-over`
    const run = o.takeOver
      ? { deploy: (p: (line: string) => void) => cluster.deploy(p, { takeOver: true }) }
      : cluster;
    const state = deploys.start(run, actor, async (end) => {
      await this.ctx.store.appendAudit({
        actor,
        action: 'cluster.deploy',
        target: this.ctx.config.kubernetes.namespace,
        result: end.state === 'done' ? 'ok' : 'error',
        details: { ...(end.error ? { error: end.error } : {}), ...(o.takeOver ? { takeOver: true } : {}) },
      });
    });
    return state;
  }

  /** Live state in the cluster (pods, endpoints, the agent's CRL number) as readable lines. */
  async clusterStatus(): Promise<{ raw: ClusterStatus; lines: string[] }> {
    const raw = await this.requireCluster().status();
    return { raw, lines: formatStatus(raw) };
  }

  /**
   * The deploy manifests as one YAML download. They hold the server's private key, the tls-crypt-v2
   * server key and the management password, so every download leaves an audit row.
   */
  async manifestsDownload(actor: string): Promise<string> {
    const text = manifestsText(await this.requireCluster().manifests());
    await this.ctx.store.appendAudit({
      actor,
      action: 'cluster.manifests',
      target: this.ctx.config.kubernetes.namespace,
      result: 'ok',
      details: { bytes: Buffer.byteLength(text) },
    });
    return text;
  }

  requireCluster(): ClusterPort {
    if (!this.cluster) throw new NotConnected('Kubernetes cluster');
    return this.cluster;
  }
}
