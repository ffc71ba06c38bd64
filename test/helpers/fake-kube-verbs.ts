/** Request handlers of the fake API server, one per verb (see fake-kube-api.ts for the model). */
import type { ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { mergePatch, serverSideApply, type JsonObject, type ManagedEntry } from './fake-kube-ssa.js';
import { PROBE_FORMS, sample, type FakeKubeApi, type Resource, type Verb } from './fake-kube-api.js';

export interface VerbRequest {
  res: ServerResponse;
  resource: Resource;
  namespace?: string;
  name?: string;
  verb: Verb;
  query: Record<string, string>;
  body: JsonObject;
}

const meta = (o: JsonObject) => o.metadata as JsonObject;

/** Everything but server bookkeeping, to decide whether a write changed anything. */
function content(o: JsonObject): string {
  const c = structuredClone(o);
  const m = meta(c);
  delete m.resourceVersion;
  delete m.managedFields;
  delete m.generation;
  return JSON.stringify(c);
}

function matchesLabels(o: JsonObject, selector: string | undefined): boolean {
  if (!selector) return true;
  const labels = (meta(o).labels ?? {}) as JsonObject;
  return selector.split(',').every((term) => {
    const [k, v] = term.split('=');
    return k !== undefined && labels[k.trim()] === v?.trim();
  });
}

function matchesFields(o: JsonObject, selector: string | undefined): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [k, v] = term.split('=');
    if (k === 'metadata.name') return meta(o).name === v;
    if (k === 'metadata.namespace') return meta(o).namespace === v;
    return true;
  });
}

/** Writes into a namespace that does not exist fail as on a real API server. */
function namespaceMissing(fake: FakeKubeApi, r: VerbRequest): boolean {
  if (!r.resource.namespaced || !r.namespace || !['create', 'apply'].includes(r.verb)) return false;
  if (fake.lookup(fake.resource('v1', 'Namespace'), undefined, r.namespace)) return false;
  fake.sendStatus(r.res, 404, 'NotFound', `namespaces "${r.namespace}" not found`, {
    name: r.namespace,
    kind: 'namespaces',
  });
  return true;
}

export async function handleVerb(fake: FakeKubeApi, r: VerbRequest): Promise<void> {
  const { res, resource, namespace, name, verb, query, body } = r;
  if (namespaceMissing(fake, r)) return;
  switch (verb) {
    case 'get': {
      const obj = fake.lookup(resource, namespace, name!);
      if (!obj) return notFound(fake, res, resource, name!);
      return fake.sendJson(res, 200, obj);
    }
    case 'list': {
      const items = fake
        .items(resource)
        .filter((o) => !namespace || meta(o).namespace === namespace)
        .filter((o) => matchesLabels(o, query.labelSelector) && matchesFields(o, query.fieldSelector))
        .map((o) => {
          const c = structuredClone(o);
          delete c.apiVersion; // as served: list items carry no kind/apiVersion
          delete c.kind;
          return c;
        });
      return fake.sendJson(res, 200, {
        kind: `${resource.kind}List`,
        apiVersion: resource.apiVersion,
        metadata: { resourceVersion: String(fake.currentRv()) },
        items,
      });
    }
    case 'watch': {
      const nameSel = /metadata\.name=([^,]+)/.exec(query.fieldSelector ?? '')?.[1];
      const rv =
        query.resourceVersion && query.resourceVersion !== '0' ? Number(query.resourceVersion) : undefined;
      fake.openWatch({ res, res_: resource, namespace, name: nameSel }, rv);
      return;
    }
    case 'create':
      return create(fake, r);
    case 'apply':
      return apply(fake, r);
    case 'patch':
    case 'update': {
      const live = fake.lookup(resource, namespace, name!);
      if (!live) return notFound(fake, res, resource, name!);
      const next = (
        verb === 'patch' ? mergePatch(live, body) : { ...body, metadata: { ...meta(live), ...meta(body) } }
      ) as JsonObject;
      next.apiVersion = resource.apiVersion;
      next.kind = resource.kind;
      meta(next).name = name!;
      if (namespace) meta(next).namespace = namespace;
      if (content(next) === content(live)) return fake.sendJson(res, 200, live);
      const managers = ((meta(live).managedFields ?? []) as unknown as ManagedEntry[]).filter(
        (m) => m.manager !== query.fieldManager || m.operation !== 'Update',
      );
      if (query.fieldManager) {
        managers.push({
          manager: query.fieldManager,
          operation: 'Update',
          apiVersion: resource.apiVersion,
          time: new Date().toISOString(),
          fieldsType: 'FieldsV1',
          fieldsV1: {},
        });
      }
      meta(next).managedFields = managers as unknown as JsonObject[];
      meta(next).resourceVersion = String(fake.nextRv());
      fake.store(resource, next, 'MODIFIED');
      return fake.sendJson(res, 200, next);
    }
    case 'delete': {
      const live = fake.lookup(resource, namespace, name!);
      if (!live) return notFound(fake, res, resource, name!);
      fake.remove(resource, live);
      return fake.sendJson(res, 200, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { name, kind: resource.plural },
      });
    }
    default:
      return fake.sendStatus(
        res,
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
  }
}

function notFound(fake: FakeKubeApi, res: ServerResponse, r: Resource, name: string): void {
  const group = r.apiVersion.includes('/') ? `.${r.apiVersion.split('/')[0]}` : '';
  fake.sendStatus(res, 404, 'NotFound', `${r.plural}${group} "${name}" not found`, { name, kind: r.plural });
}

function outOfRange(fake: FakeKubeApi, ip: string): boolean {
  try {
    const addr = ipaddr.parse(ip);
    const range = ipaddr.parseCIDR(fake.options.serviceRange);
    return addr.kind() !== range[0].kind() || !addr.match(range) || ip === '0.0.0.0';
  } catch {
    return true;
  }
}

function create(fake: FakeKubeApi, { res, resource, namespace, query, body }: VerbRequest): void {
  const name = String(meta(body)?.name ?? '');
  const dryRun = query.dryRun === 'All';
  if (resource.kind === 'Service') {
    const ip = (body.spec as JsonObject | undefined)?.clusterIP;
    if (typeof ip === 'string' && ip !== '' && ip !== 'None' && outOfRange(fake, ip)) {
      const answer = sample(PROBE_FORMS[fake.options.probeForm]);
      const text = JSON.stringify(answer)
        .replaceAll('10.96.0.0/12', fake.options.serviceRange)
        .replaceAll('invalid-svc', name)
        .replaceAll('0.0.0.0', ip);
      const out = JSON.parse(text) as JsonObject;
      if (out.kind === 'Status') return fake.sendJson(res, Number(out.code), out);
      if (dryRun) return fake.sendJson(res, 201, { ...out, metadata: { ...meta(out), namespace } });
    }
  }
  if (fake.lookup(resource, namespace, name)) {
    const group = resource.apiVersion.includes('/') ? `.${resource.apiVersion.split('/')[0]}` : '';
    return fake.sendStatus(res, 409, 'AlreadyExists', `${resource.plural}${group} "${name}" already exists`, {
      name,
      kind: resource.plural,
    });
  }
  const obj = structuredClone(body);
  obj.apiVersion = resource.apiVersion;
  obj.kind = resource.kind;
  const m = meta(obj);
  if (namespace) m.namespace = namespace;
  m.uid = randomUUID();
  m.creationTimestamp = new Date().toISOString();
  m.generation = 1;
  defaults(fake, resource, obj);
  if (dryRun) return fake.sendJson(res, 201, obj);
  m.resourceVersion = String(fake.nextRv());
  fake.store(resource, obj, 'ADDED');
  fake.sendJson(res, 201, obj);
}

function apply(fake: FakeKubeApi, { res, resource, namespace, name, query, body }: VerbRequest): void {
  const manager = query.fieldManager;
  if (!manager)
    return fake.sendStatus(res, 400, 'BadRequest', 'PATCH with apply-patch requires a fieldManager');
  const force = query.force === 'true';
  const live = fake.lookup(resource, namespace, name!);
  const managed = (live ? (meta(live).managedFields ?? []) : []) as unknown as ManagedEntry[];
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const out = serverSideApply(live, managed, body, manager, force, now);
  if (out.conflicts.length > 0) {
    const byMgr = out.conflicts[0]!;
    const fields = out.conflicts.map((c) => '.' + c.path.join('.'));
    const one = out.conflicts.length === 1;
    const message = one
      ? `Apply failed with 1 conflict: conflict with "${byMgr.manager}" using ${byMgr.apiVersion}: ${fields[0]}`
      : `Apply failed with ${fields.length} conflicts: conflicts with "${byMgr.manager}" using ${byMgr.apiVersion}:\n${fields.map((f) => `- ${f}`).join('\n')}`;
    return fake.sendJson(res, 409, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason: 'Conflict',
      details: {
        causes: out.conflicts.map((c, i) => ({
          reason: 'FieldManagerConflict',
          message: `conflict with "${c.manager}" using ${c.apiVersion}`,
          field: fields[i],
        })),
      },
      code: 409,
    });
  }
  const obj = out.object;
  obj.apiVersion = resource.apiVersion;
  obj.kind = resource.kind;
  const m = (obj.metadata ??= {}) as JsonObject;
  m.name = name!;
  if (namespace) m.namespace = namespace;
  m.managedFields = out.managedFields as unknown as JsonObject[];
  if (
    live &&
    content(obj) === content(live) &&
    JSON.stringify(managed) === JSON.stringify(out.managedFields)
  ) {
    return fake.sendJson(res, 200, live); // a no-op apply stores nothing and keeps the resourceVersion
  }
  if (!live) {
    m.uid = randomUUID();
    m.creationTimestamp = now;
    m.generation = 1;
    defaults(fake, resource, obj);
  } else {
    m.generation =
      Number(meta(live).generation ?? 1) +
      (JSON.stringify(obj.spec) !== JSON.stringify(live.spec) ||
      JSON.stringify(obj.data) !== JSON.stringify(live.data)
        ? 1
        : 0);
    if (live.status !== undefined) obj.status = live.status;
  }
  m.resourceVersion = String(fake.nextRv());
  fake.store(resource, obj, live ? 'MODIFIED' : 'ADDED');
  fake.sendJson(res, live ? 200 : 201, obj);
  if (resource.kind === 'Deployment' && (!live || m.generation !== meta(live).generation))
    rollout(fake, resource, obj);
}

/** The API server's own defaults for the kinds podgate creates (only what podgate reads back). */
function defaults(fake: FakeKubeApi, resource: Resource, obj: JsonObject): void {
  if (resource.kind === 'Namespace') obj.status = { phase: 'Active' };
  if (resource.kind === 'Service') {
    const spec = (obj.spec ??= {}) as JsonObject;
    if (!spec.clusterIP) {
      const [net] = ipaddr.parseCIDR(fake.options.serviceRange);
      const bytes = net.toByteArray();
      bytes[bytes.length - 1] = 100 + (fake.currentRv() % 100);
      spec.clusterIP = ipaddr.fromByteArray(bytes).toString();
      spec.clusterIPs = [spec.clusterIP];
    }
  }
}

/** Pretends the Deployment rolled out: one Running Pod, ready status, Endpoints for matching Services. */
function rollout(fake: FakeKubeApi, resource: Resource, dep: JsonObject): void {
  const delay = fake.options.rolloutDelayMs;
  const m = meta(dep);
  const name = String(m.name);
  const ns = String(m.namespace);
  const generation = Number(m.generation);
  const spec = dep.spec as JsonObject;
  const replicas = Number(spec.replicas ?? 1);
  const template = spec.template as JsonObject;
  const podLabels = (meta(template).labels ?? {}) as Record<string, string>;
  const started = fake.lookup(resource, ns, name)!;
  fake.store(
    resource,
    {
      ...started,
      metadata: { ...meta(started), resourceVersion: String(fake.nextRv()) },
      status: {
        observedGeneration: generation,
        replicas,
        updatedReplicas: replicas,
        unavailableReplicas: replicas,
      },
    },
    'MODIFIED',
  );
  if (delay === null) return;
  fake.later(delay, () => {
    const live = fake.lookup(resource, ns, name);
    if (!live || meta(live).generation !== generation) return;
    const podRes = fake.resource('v1', 'Pod');
    for (const old of fake
      .items(podRes)
      .filter((p) => meta(p).namespace === ns && String(meta(p).name).startsWith(`${name}-`))) {
      fake.remove(podRes, old);
    }
    const podName = `${name}-${generation}abc-x${generation}`;
    const containers = ((template.spec as JsonObject).containers as JsonObject[]).map((c) => ({
      name: c.name,
      ready: true,
      restartCount: 0,
      image: c.image,
    }));
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: podName,
        namespace: ns,
        labels: podLabels,
        uid: randomUUID(),
        resourceVersion: String(fake.nextRv()),
      },
      spec: template.spec,
      status: {
        phase: 'Running',
        podIP: '10.244.1.5',
        hostIP: '172.18.0.2',
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: containers,
      },
    } as unknown as JsonObject;
    fake.store(podRes, pod, 'ADDED');
    const svcRes = fake.resource('v1', 'Service');
    const epRes = fake.resource('v1', 'Endpoints');
    for (const svc of fake.items(svcRes).filter((s) => meta(s).namespace === ns)) {
      const sel = ((svc.spec as JsonObject).selector ?? {}) as Record<string, string>;
      if (Object.keys(sel).length === 0 || !Object.entries(sel).every(([k, v]) => podLabels[k] === v))
        continue;
      const ports = ((svc.spec as JsonObject).ports as JsonObject[]).map((p) => ({
        name: p.name,
        port: p.targetPort ?? p.port,
        protocol: p.protocol,
      }));
      const ep = {
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: { name: meta(svc).name, namespace: ns, resourceVersion: String(fake.nextRv()) },
        subsets: [
          {
            addresses: [{ ip: '10.244.1.5', targetRef: { kind: 'Pod', name: podName, namespace: ns } }],
            ports,
          },
        ],
      } as unknown as JsonObject;
      fake.store(epRes, ep, fake.lookup(epRes, ns, String(meta(svc).name)) ? 'MODIFIED' : 'ADDED');
    }
    const status = {
      observedGeneration: generation,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
      conditions: [
        { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
        { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
      ],
    };
    fake.store(
      resource,
      { ...live, metadata: { ...meta(live), resourceVersion: String(fake.nextRv()) }, status },
      'MODIFIED',
    );
  });
}
