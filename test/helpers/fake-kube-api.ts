/**
 * FAKE. Every cluster test runs against the real control plane (test/helpers/real-cluster.ts) except
 * these, which need something a real kube-apiserver v1.34 cannot be made to do on demand:
 * - test/integration/cluster/deploy-faults-fake.test.ts: a 504 Timeout Status for one apply, and an
 *   apply that never answers (a hang mid-deploy), each followed by a retry that completes.
 * - test/unit/cluster/discovery.test.ts: a 500 and a 503 from one source (an aggregated API such as
 *   Calico's), a dry-run probe refused with a 500 (a webhook that rejects dry-run); and other releases,
 *   which a 1.34 server cannot be: no ServiceCIDR API or only v1beta1 (≤1.32: kubeadm-config, k3s and
 *   the dry-run probe answer for the service range) and the probe error texts of 1.13-1.22, 1.23-1.33
 *   and 1.33's multi-CIDR allocator.
 * - test/unit/cluster/secret-watch-source.test.ts: the watch stream ending between two writes, history
 *   compacted (410 Expired) at that moment, and a 403/500 on chosen list/watch calls.
 * - test/unit/cluster/access-watch.test.ts: every watch of the access view ending, a pod deleted in that
 *   gap and history compacted at that moment (410 on the re-watch), and 403 on the first pod lists.
 * - test/unit/cluster/fake-kube-api.test.ts: checks of the fake itself against the recorded samples.
 *
 * An in-process Kubernetes API server for tests: the REAL @kubernetes/client-node talks to it over
 * plain HTTP on 127.0.0.1 (kubeconfig with skipTLSVerify). Answers are built from the payloads in
 * test/fixtures/k8s-samples (see SOURCES.md there): discovery documents, kubeadm-config, nodes,
 * ServiceCIDRs, clusterIP range errors by Kubernetes version, watch framing and 410 Expired, apply conflicts.
 *
 * Models: discovery (/api, /api/v1, /apis as a legacy APIGroupList, /apis/<gv>; ServiceCIDR v1/v1beta1
 * switchable; enough for `kubectl apply` too),
 * get/list (label selector equality, fieldSelector metadata.name/namespace), create (409 AlreadyExists,
 * 404 when the namespace does not exist; default/kube-* exist from the start; `seed()` bypasses it),
 * dryRun=All without storing), JSON merge patch, server-side apply (fieldManager, force, managedFields,
 * 409 FieldManagerConflict as in the samples, resourceVersion bumped only on a real change,
 * generation bumped on spec changes), delete, watch (ndjson over a 200 stream, history replay from a
 * resourceVersion, 410 Expired as an ERROR event after `compact()`, stream end via `endWatches()`),
 * a dry-run Service probe answering in the error form of a chosen Kubernetes version, a Deployment
 * "rollout" (status, one Running Pod, Endpoints for matching Services), and injected failures per
 * verb/kind/name (401, 403 Forbidden, 404, 409, 500, 503 from an aggregated API, 504 Timeout Status, or a
 * request that never answers).
 *
 * Does NOT model: authentication/authorization (every request is allowed unless a 403 is injected),
 * TLS, admission and schema validation (the tests validate manifests with kubernetes-models instead),
 * defaulting beyond Service clusterIP / Namespace phase, strategic merge (treated as JSON merge patch),
 * list merge keys in apply (lists are atomic), Update managers' conflicts on create, subresources
 * (/status, /scale), pagination (limit/continue), set-based label selectors, BOOKMARK events,
 * garbage collection / owner references, finalizers, protobuf, table output, aggregated discovery
 * (/apis APIGroupDiscoveryList), watch of kinds other than namespaced ones by path.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { mergePatch, type JsonObject, type ManagedEntry } from './fake-kube-ssa.js';

import { SAMPLES, sample } from './k8s-samples.js';

export { SAMPLES, sample };

/** The clusterIP range error forms, by the Kubernetes versions that produce them (SOURCES.md §4). */
export const PROBE_FORMS = {
  'dryrun-success-1.13-1.22': 'service-dryrun-create-response-k8s-1.13-1.22-reconstructed.json',
  'nondryrun-1.8-1.19': 'status-svc-clusterip-out-of-range-k8s-1.8-1.19-nondryrun.json',
  'nondryrun-1.20-1.22': 'status-svc-clusterip-out-of-range-k8s-1.20-1.22-nondryrun.json',
  '1.23-1.33': 'status-svc-clusterip-out-of-range-k8s-1.23-1.33.json',
  'multicidr-1.33': 'status-svc-clusterip-out-of-range-k8s-1.33-multicidr-nondryrun.json',
  'dryrun-1.34plus': 'status-svc-clusterip-out-of-range-k8s-1.34plus-dryrun.json',
  'nondryrun-1.34plus': 'status-svc-clusterip-out-of-range-k8s-1.34plus-nondryrun.json',
} as const;
export type ProbeForm = keyof typeof PROBE_FORMS;

export interface FakeOptions {
  /** Which ServiceCIDR API versions are served. Default 'v1'. */
  serviceCidrApi?: 'v1' | 'v1beta1' | 'both' | 'none';
  /** How a dry-run Service with an impossible clusterIP is answered. Default '1.23-1.33'. */
  probeForm?: ProbeForm;
  /** The range the API server allocates ClusterIPs from (and names in probe errors). */
  serviceRange?: string;
  /** Deployments become ready this long after a change; `null` never (a stuck rollout). Default 20 ms. */
  rolloutDelayMs?: number | null;
}

export type Verb =
  'get' | 'list' | 'watch' | 'create' | 'apply' | 'patch' | 'update' | 'delete' | 'discovery';
export interface Injection {
  verb?: Verb;
  kind?: string;
  name?: string;
  status: 401 | 403 | 404 | 409 | 500 | 503 | 504 | 'hang';
  /** How many matching requests fail; default 1. */
  times?: number;
}

interface Resource {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string;
  verb: Verb;
}

interface WatchClient {
  res: ServerResponse;
  res_: Resource;
  namespace?: string;
  name?: string;
}

interface Event {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  res: Resource;
  obj: JsonObject;
}

const CRD_DISCOVERY: Record<string, JsonObject> = {
  // Not in the samples: minimal APIResourceLists for the CNI CRDs, same shape as the real ones.
  'crd.projectcalico.org/v1': {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: 'crd.projectcalico.org/v1',
    resources: [
      {
        name: 'ippools',
        singularName: 'ippool',
        namespaced: false,
        kind: 'IPPool',
        verbs: ['get', 'list', 'watch'],
      },
    ],
  },
  'cilium.io/v2': {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: 'cilium.io/v2',
    resources: [
      {
        name: 'ciliumnodes',
        singularName: 'ciliumnode',
        namespaced: false,
        kind: 'CiliumNode',
        verbs: ['get', 'list', 'watch'],
      },
    ],
  },
};

export class FakeKubeApi {
  readonly objects = new Map<string, JsonObject>();
  readonly requests: RequestRecord[] = [];
  private readonly injections: Injection[] = [];
  private readonly history: Event[] = [];
  private readonly watchers = new Set<WatchClient>();
  private readonly sockets = new Set<Socket>();
  private rv = 1000;
  private compactedBefore = 0;
  private readonly server: Server;
  private readonly timers = new Set<NodeJS.Timeout>();
  port = 0;
  options: Required<FakeOptions>;

  constructor(options: FakeOptions = {}) {
    this.options = {
      serviceCidrApi: options.serviceCidrApi ?? 'v1',
      probeForm: options.probeForm ?? '1.23-1.33',
      serviceRange: options.serviceRange ?? '10.96.0.0/12',
      rolloutDelayMs: options.rolloutDelayMs === undefined ? 20 : options.rolloutDelayMs,
    };
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.status(res, 500, 'InternalError', String(err)));
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(options: FakeOptions = {}): Promise<FakeKubeApi> {
    const fake = new FakeKubeApi(options);
    // The namespaces every cluster has; others must be created (or seeded) before objects go in them.
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns }, status: { phase: 'Active' } });
    }
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.port = (fake.server.address() as { port: number }).port;
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A KubeConfig for this server (what a kubeconfig file with insecure-skip-tls-verify gives). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake', namespace: 'default' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** Kubeconfig file text, for the CLI. */
  kubeconfigYaml(): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'current-context: fake',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${this.url}`,
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: fake',
      '  user:',
      '    token: fake-token',
      'contexts:',
      '- name: fake',
      '  context:',
      '    cluster: fake',
      '    user: fake',
      '',
    ].join('\n');
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const w of this.watchers) w.res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  inject(i: Injection): void {
    this.injections.push({ ...i, times: i.times ?? 1 });
  }

  /** Ends every open watch stream (as an API server does at its watch timeout). */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Forgets history: watches from an older resourceVersion now get 410 Expired. */
  compact(): void {
    this.compactedBefore = this.rv;
    this.history.length = 0;
  }

  /** Stores an object as if some other client had created it (no managedFields for podgate). */
  seed(obj: JsonObject): JsonObject {
    const res = this.resourceOf(String(obj.apiVersion), String(obj.kind));
    const copy = structuredClone(obj);
    const meta = (copy.metadata ?? {}) as JsonObject;
    copy.metadata = meta;
    meta.resourceVersion = String(++this.rv);
    meta.uid ??= randomUUID();
    meta.creationTimestamp ??= new Date().toISOString();
    this.put(res, copy, this.objects.has(this.key(res, meta)) ? 'MODIFIED' : 'ADDED');
    return copy;
  }

  /** Seeds a sample file, optionally changed by `edit`. */
  seedSample(file: string, edit?: (o: JsonObject) => void): JsonObject {
    const obj = sample(file);
    edit?.(obj);
    return this.seed(obj);
  }

  getObject(apiVersion: string, kind: string, name: string, namespace?: string): JsonObject | undefined {
    const res = this.resourceOf(apiVersion, kind);
    return this.objects.get(this.key(res, { name, namespace: namespace ?? null }));
  }

  /** Changes an object as another client would (bumps resourceVersion, notifies watchers). */
  update(
    apiVersion: string,
    kind: string,
    name: string,
    namespace: string | undefined,
    patch: JsonObject,
  ): JsonObject {
    const res = this.resourceOf(apiVersion, kind);
    const live = this.objects.get(this.key(res, { name, namespace: namespace ?? null }));
    if (!live) throw new Error(`fake: no ${kind} ${name}`);
    const next = mergePatch(live, patch) as JsonObject;
    (next.metadata as JsonObject).resourceVersion = String(++this.rv);
    this.put(res, next, 'MODIFIED');
    return next;
  }

  // ---------------------------------------------------------------- internals

  private key(res: Resource, meta: JsonObject): string {
    return `${res.apiVersion}|${res.kind}|${res.namespaced ? String(meta.namespace ?? '') : ''}|${String(meta.name ?? '')}`;
  }

  private put(res: Resource, obj: JsonObject, type: Event['type']): void {
    const meta = obj.metadata as JsonObject;
    this.objects.set(this.key(res, meta), obj);
    const ev: Event = { rv: Number(meta.resourceVersion), type, res, obj: structuredClone(obj) };
    this.history.push(ev);
    for (const w of this.watchers) this.send(w, ev);
  }

  private send(w: WatchClient, ev: Event): void {
    const meta = ev.obj.metadata as JsonObject;
    if (w.res_.kind !== ev.res.kind || w.res_.apiVersion !== ev.res.apiVersion) return;
    if (w.namespace !== undefined && meta.namespace !== w.namespace) return;
    if (w.name !== undefined && meta.name !== w.name) return;
    w.res.write(JSON.stringify({ type: ev.type, object: ev.obj }) + '\n');
  }

  private discoveryDocs(): Map<string, JsonObject> {
    const docs = new Map<string, JsonObject>();
    docs.set('v1', sample('discovery-api-v1-full.json'));
    docs.set('apps/v1', sample('discovery-apis-apps-v1.json'));
    docs.set('rbac.authorization.k8s.io/v1', sample('discovery-apis-rbac.authorization.k8s.io-v1.json'));
    docs.set('policy/v1', sample('discovery-apis-policy-v1.json'));
    docs.set('coordination.k8s.io/v1', sample('discovery-apis-coordination.k8s.io-v1.json'));
    const netV1 = sample('discovery-apis-networking.k8s.io-v1.json');
    const api = this.options.serviceCidrApi;
    if (api !== 'v1' && api !== 'both') {
      netV1.resources = (netV1.resources as JsonObject[]).filter(
        (r) => !String(r.name).startsWith('servicecidrs'),
      );
    }
    docs.set('networking.k8s.io/v1', netV1);
    if (api === 'v1beta1' || api === 'both')
      docs.set('networking.k8s.io/v1beta1', sample('discovery-apis-networking.k8s.io-v1beta1.json'));
    for (const [gv, doc] of Object.entries(CRD_DISCOVERY)) {
      const kind = String(((doc.resources as JsonObject[])[0] as JsonObject).kind);
      if ([...this.objects.keys()].some((k) => k.startsWith(`${gv}|${kind}|`))) docs.set(gv, doc);
    }
    return docs;
  }

  private resourceOf(apiVersion: string, kind: string): Resource {
    const doc = this.discoveryDocs().get(apiVersion) ?? CRD_DISCOVERY[apiVersion];
    const r = (doc?.resources as JsonObject[] | undefined)?.find(
      (x) => x.kind === kind && !String(x.name).includes('/'),
    );
    if (r) return { apiVersion, kind, plural: String(r.name), namespaced: r.namespaced === true };
    // ServiceCIDR switched off still needs a home for seeding.
    if (kind === 'ServiceCIDR') return { apiVersion, kind, plural: 'servicecidrs', namespaced: false };
    throw new Error(`fake: unknown kind ${apiVersion} ${kind}`);
  }

  private status(
    res: ServerResponse,
    code: number,
    reason: string,
    message: string,
    details?: JsonObject,
  ): void {
    if (res.headersSent) return void res.destroy();
    const body = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      ...(details ? { details } : {}),
      code,
    };
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const bodyText = Buffer.concat(chunks).toString('utf8');
    const contentType = String(req.headers['content-type'] ?? '');

    // Discovery.
    if (parts.length === 1 && parts[0] === 'api') return this.json(res, 200, sample('discovery-api.json'));
    const docs = this.discoveryDocs();
    if (parts.length === 1 && parts[0] === 'apis') {
      // Legacy (unaggregated) APIGroupList, built from the group/version documents served here.
      const groups = new Map<string, string[]>();
      for (const gv of docs.keys()) {
        if (!gv.includes('/')) continue;
        const [g, v] = gv.split('/') as [string, string];
        groups.set(g, [...(groups.get(g) ?? []), v]);
      }
      return this.json(res, 200, {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [...groups].map(([name, versions]) => ({
          name,
          versions: versions.map((version) => ({ groupVersion: `${name}/${version}`, version })),
          preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
        })),
      });
    }
    const gvLen = parts[0] === 'api' ? 2 : 3;
    const gv = parts[0] === 'api' ? parts[1] : `${parts[1]}/${parts[2]}`;
    if (parts.length === gvLen) {
      this.requests.push({
        method: req.method ?? '',
        path: url.pathname,
        query,
        contentType,
        verb: 'discovery',
      });
      if (this.takeInjection(res, 'discovery', undefined, undefined)) return;
      const doc = gv ? docs.get(gv) : undefined;
      return doc
        ? this.json(res, 200, doc)
        : this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
    }
    const doc = gv ? docs.get(gv) : undefined;
    if (!doc || !gv)
      return this.status(res, 404, 'NotFound', 'the server could not find the requested resource');

    let rest = parts.slice(gvLen);
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name] = rest;
    const entry = (doc.resources as JsonObject[]).find((r) => r.name === plural);
    if (!entry || rest.length > 2)
      return this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
    const resource: Resource = {
      apiVersion: gv,
      kind: String(entry.kind),
      plural: String(plural),
      namespaced: entry.namespaced === true,
    };

    const method = req.method ?? 'GET';
    const verb: Verb =
      method === 'GET'
        ? name
          ? 'get'
          : query.watch === 'true' || query.watch === '1'
            ? 'watch'
            : 'list'
        : method === 'POST'
          ? 'create'
          : method === 'PATCH'
            ? contentType.startsWith('application/apply-patch')
              ? 'apply'
              : 'patch'
            : method === 'PUT'
              ? 'update'
              : 'delete';
    this.requests.push({ method, path: url.pathname, query, contentType, verb });
    let body: JsonObject = {};
    if (bodyText) {
      try {
        body = (contentType.includes('yaml') ? parseYaml(bodyText) : JSON.parse(bodyText)) as JsonObject;
      } catch {
        return this.status(res, 400, 'BadRequest', 'cannot parse the request body');
      }
    }
    const objName = name ?? String((body.metadata as JsonObject | undefined)?.name ?? '');
    if (this.takeInjection(res, verb, resource, objName, namespace)) return;
    const { handleVerb } = await import('./fake-kube-verbs.js');
    return handleVerb(this, { res, resource, namespace, name, verb, query, body });
  }

  private takeInjection(
    res: ServerResponse,
    verb: Verb,
    r: Resource | undefined,
    name?: string,
    ns?: string,
  ): boolean {
    const i = this.injections.find(
      (x) =>
        (x.times ?? 0) > 0 &&
        (!x.verb || x.verb === verb) &&
        (!x.kind || x.kind === r?.kind) &&
        (!x.name || x.name === name),
    );
    if (!i) return false;
    i.times = (i.times ?? 1) - 1;
    const plural = r?.plural ?? '';
    const group = r && r.apiVersion.includes('/') ? r.apiVersion.split('/')[0] : '';
    if (i.status === 'hang') return true; // never answered; the socket is destroyed at close()
    if (i.status === 403) {
      this.status(
        res,
        403,
        'Forbidden',
        `${plural}${name ? ` "${name}"` : ''} is forbidden: User "system:serviceaccount:middleware:podgate" cannot ${verb === 'apply' ? 'patch' : verb} resource "${plural}" in API group "${group}"${ns ? ` in the namespace "${ns}"` : ' at the cluster scope'}`,
        { name: name ?? '', kind: plural },
      );
    } else if (i.status === 404)
      this.status(res, 404, 'NotFound', `${plural} "${name ?? ''}" not found`, {
        name: name ?? '',
        kind: plural,
      });
    else if (i.status === 409) this.json(res, 409, sample('ssa-conflict-409-status.json'));
    else if (i.status === 504)
      this.status(
        res,
        504,
        'Timeout',
        'Timeout: request did not complete within requested timeout - context deadline exceeded',
        {},
      );
    else if (i.status === 401) this.status(res, 401, 'Unauthorized', 'Unauthorized', {});
    else if (i.status === 503)
      // what kube-aggregator answers when the APIService behind a group (e.g. Calico's) is unavailable
      this.status(res, 503, 'ServiceUnavailable', 'the server is currently unable to handle the request', {});
    else this.status(res, 500, 'InternalError', 'Internal error occurred: injected');
    return true;
  }

  // ---- used by fake-kube-verbs.ts
  /** @internal */ nextRv(): number {
    return ++this.rv;
  }
  /** @internal */ store(res: Resource, obj: JsonObject, type: Event['type']): void {
    this.put(res, obj, type);
  }
  /** @internal */ lookup(
    res: Resource,
    namespace: string | undefined,
    name: string,
  ): JsonObject | undefined {
    return this.objects.get(this.key(res, { name, namespace: namespace ?? null }));
  }
  /** @internal */ remove(res: Resource, obj: JsonObject): void {
    this.objects.delete(this.key(res, obj.metadata as JsonObject));
    const meta = obj.metadata as JsonObject;
    meta.resourceVersion = String(++this.rv);
    const ev: Event = { rv: this.rv, type: 'DELETED', res, obj };
    this.history.push(ev);
    for (const w of this.watchers) this.send(w, ev);
  }
  /** @internal */ sendStatus(
    res: ServerResponse,
    code: number,
    reason: string,
    message: string,
    details?: JsonObject,
  ): void {
    this.status(res, code, reason, message, details);
  }
  /** @internal */ sendJson(res: ServerResponse, code: number, body: unknown): void {
    this.json(res, code, body);
  }
  /** @internal */ items(res: Resource): JsonObject[] {
    const prefix = `${res.apiVersion}|${res.kind}|`;
    return [...this.objects.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
  }
  /** @internal */ currentRv(): number {
    return this.rv;
  }
  /** @internal */ openWatch(w: WatchClient, fromRv: number | undefined): void {
    w.res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    w.res.flushHeaders(); // the client's fetch resolves on the headers; events may be minutes away
    if (fromRv !== undefined && fromRv < this.compactedBefore) {
      // As the watch cache answers (SOURCES.md §8): an ERROR event inside a 200 stream, then the end.
      const err = {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${fromRv} (${this.compactedBefore})`,
        reason: 'Expired',
        code: 410,
      };
      w.res.end(JSON.stringify({ type: 'ERROR', object: err }) + '\n');
      return;
    }
    if (fromRv === undefined) {
      for (const obj of this.items(w.res_)) this.send(w, { rv: 0, type: 'ADDED', res: w.res_, obj });
    } else {
      for (const ev of this.history) if (ev.rv > fromRv) this.send(w, ev);
    }
    this.watchers.add(w);
    w.res.on('close', () => this.watchers.delete(w));
  }
  /** @internal */ later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }
  /** @internal */ resource(apiVersion: string, kind: string): Resource {
    return this.resourceOf(apiVersion, kind);
  }
}

export type { Resource, WatchClient, ManagedEntry, JsonObject };
