/**
 * Applies the manifests with server-side apply (field manager `podgate`, force), one object at a time
 * in dependency order, reporting each as created / configured / unchanged, then waits for the rollout.
 * Safe to re-run: a deploy that failed half-way continues where it stopped.
 */
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { describeMissing, grantCommand, missingRights } from './deploy-rights.js';
import { KubeApiError, refOf, refText, type KubeApi, type KubeObject } from './kube-api.js';
import { OBJECT_NAMES, POD_SECURITY_ENFORCE, POD_SECURITY_LEVEL } from './pod-layout.js';
import { applyCrlSecret } from './secret-publisher.js';
import { checkOwner, ownerOf } from './ownership.js';

const log = logger.child({ module: 'cluster.deploy' });

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface DeployResult {
  objects: { object: string; action: ApplyAction }[];
  rollout: { ready: boolean; replicas: number; readyReplicas: number; changed: boolean };
}

export interface DeployDeps {
  kube: KubeApi;
  onProgress?: (line: string) => void;
  /** How long to wait for the Deployment to become ready. Default 180 s. */
  rolloutTimeoutMs?: number;
  pollMs?: number;
  /**
   * This manager's CA key ids (issuing first, then the previous one during a rotation): objects marked
   * with another CA's id are not replaced (ownership.ts) unless `takeOver`.
   */
  owner?: { keyIds: readonly string[]; takeOver?: boolean };
}

/** A deploy that stopped: names the object and tells how to continue. */
export class DeployError extends AppError {
  constructor(
    readonly object: string,
    message: string,
    cause?: unknown,
  ) {
    super(502, 'deploy_failed', message, { cause });
  }
}

const rv = (o: KubeObject | undefined) => o?.metadata.resourceVersion;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A namespace that already enforces a stricter PodSecurity level would accept every object and then
 * refuse the pod (the ReplicaSet's FailedCreate): stop before applying anything, saying what to do.
 * podgate labels a namespace it creates itself, or one without a level, `privileged`.
 */
function refuseStricterPodSecurity(ns: KubeObject, live: KubeObject | undefined): void {
  const level = live?.metadata.labels?.[POD_SECURITY_ENFORCE];
  if (level === undefined || level === POD_SECURITY_LEVEL) return;
  const name = ns.metadata.name ?? '?';
  throw new DeployError(
    `Namespace ${name}`,
    `namespace ${name} enforces PodSecurity "${level}", which refuses the OpenVPN pod (it needs NET_ADMIN and NET_RAW: level "${POD_SECURITY_LEVEL}"); ` +
      `run \`kubectl label namespace ${name} ${POD_SECURITY_ENFORCE}=${POD_SECURITY_LEVEL} --overwrite\` or set kubernetes.namespace to a namespace of its own; nothing was applied`,
  );
}

type Json = unknown;

/** `value` reduced to the keys `shape` has (recursively; arrays element by element). */
function project(value: Json, shape: Json): Json {
  if (Array.isArray(shape)) {
    return Array.isArray(value) ? shape.map((s, i) => project(value[i], s)) : value;
  }
  if (shape && typeof shape === 'object') {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
    const out: Record<string, Json> = {};
    for (const k of Object.keys(shape))
      out[k] = project((value as Record<string, Json>)[k], (shape as Record<string, Json>)[k]);
    return out;
  }
  return value;
}

function podgateFields(obj: KubeObject | undefined): string {
  const entries = (obj?.metadata.managedFields ?? []) as {
    manager?: string;
    operation?: string;
    fieldsV1?: unknown;
  }[];
  return JSON.stringify(
    entries.filter((m) => m.manager === FIELD_MANAGER_NAME && m.operation === 'Apply').map((m) => m.fieldsV1),
  );
}

const FIELD_MANAGER_NAME = 'podgate';

/**
 * Whether an apply changed what podgate manages. Not the resourceVersion alone: a mutating admission
 * webhook that stamps every write bumps it on each apply. Unchanged = the fields podgate sends read the
 * same before and after, and podgate's managed field set did not change (a field it stopped sending).
 */
export function unchangedByApply(desired: KubeObject, before: KubeObject, after: KubeObject): boolean {
  if (rv(before) === rv(after)) return true;
  const { metadata, ...rest } = desired;
  const meta: Record<string, unknown> = {};
  if (metadata.labels) meta.labels = metadata.labels;
  if (metadata.annotations) meta.annotations = metadata.annotations;
  const shape = { ...rest, metadata: meta };
  return (
    JSON.stringify(project(before, shape)) === JSON.stringify(project(after, shape)) &&
    podgateFields(before) === podgateFields(after)
  );
}

export async function applyAll(objects: readonly KubeObject[], deps: DeployDeps): Promise<DeployResult> {
  const progress = deps.onProgress ?? (() => undefined);
  const result: DeployResult = {
    objects: [],
    rollout: { ready: false, replicas: 0, readyReplicas: 0, changed: false },
  };
  let workload: { obj: KubeObject; before?: KubeObject; after: KubeObject } | undefined;
  const namespace = objects.find((o) => o.metadata.namespace)?.metadata.namespace ?? '';
  const lacking = await missingRights(objects, deps.kube);
  if (lacking) {
    throw new DeployError(
      `Namespace ${namespace}`,
      `${lacking.user ?? 'the Kubernetes identity podgate uses'} lacks rights to deploy into namespace ${namespace}: ${describeMissing(lacking.missing)}; nothing was applied. ` +
        `An admin grants them with ${grantCommand(namespace, lacking.user)}, then run deploy again`,
    );
  }
  // Before anything is applied: objects another manager's CA owns stop the deploy.
  for (const obj of objects) {
    if (!ownerOf(obj) || !deps.owner) continue;
    checkOwner(await deps.kube.get(refOf(obj)), deps.owner.keyIds, deps.owner.takeOver);
  }
  for (const [i, obj] of objects.entries()) {
    const name = refText({ kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace });
    let before: KubeObject | undefined;
    let after: KubeObject;
    try {
      before = await deps.kube.get(refOf(obj));
      if (obj.kind === 'Namespace') refuseStricterPodSecurity(obj, before);
      after =
        obj.kind === 'Secret' && obj.metadata.name === OBJECT_NAMES.crlSecret
          ? // a revocation published while deploy ran must not be rolled back to the CRL deploy read
            (await applyCrlSecret(deps.kube, obj, { takeOver: deps.owner?.takeOver })).stored
          : await deps.kube.apply(structuredClone(obj));
    } catch (err) {
      if (err instanceof DeployError) throw err;
      const done = i === 0 ? 'nothing was applied' : `the ${i} object(s) before it were applied`;
      const forbidden = err instanceof KubeApiError && err.kubeStatus === 403;
      const grant = forbidden
        ? `; an admin grants podgate's rights with ${grantCommand(namespace, undefined)}`
        : '';
      throw new DeployError(
        name,
        `deploy stopped at ${name} (${i + 1}/${objects.length}): ${(err as Error).message}; ${done}${grant}, run deploy again to continue`,
        err,
      );
    }
    const action: ApplyAction = !before
      ? 'created'
      : unchangedByApply(obj, before, after)
        ? 'unchanged'
        : 'configured';
    result.objects.push({ object: name, action });
    progress(`${name} ${action}`);
    log.info({ object: name, action }, 'applied');
    if (obj.kind === 'Deployment') workload = { obj, before, after };
  }
  if (workload)
    result.rollout = await waitForRollout(
      workload.after,
      deps,
      workload.before !== undefined && unchangedByApply(workload.obj, workload.before, workload.after),
    );
  return result;
}

interface DeploymentStatus {
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
}

/** Polls the Deployment until the newest generation is observed and all its replicas are updated and available. */
export async function waitForRollout(
  dep: KubeObject,
  deps: DeployDeps,
  unchanged: boolean,
): Promise<DeployResult['rollout']> {
  const progress = deps.onProgress ?? (() => undefined);
  const name = refText({ kind: dep.kind, name: dep.metadata.name, namespace: dep.metadata.namespace });
  const want = Number((dep.spec as { replicas?: number } | undefined)?.replicas ?? 1);
  const deadline = Date.now() + (deps.rolloutTimeoutMs ?? 180_000);
  let last = '';
  for (;;) {
    let live: KubeObject | undefined;
    try {
      live = await deps.kube.get(refOf(dep));
    } catch (err) {
      throw new DeployError(
        name,
        `waiting for the rollout of ${name}: ${(err as Error).message}; run deploy again to continue`,
        err,
      );
    }
    const failure = live ? await rolloutFailure(live, deps.kube) : undefined;
    if (failure) {
      throw new DeployError(name, `${name} cannot become ready: ${failure}; fix that, then run deploy again`);
    }
    const st = (live?.status ?? {}) as DeploymentStatus;
    const generation = Number(live?.metadata.generation ?? 0);
    const ready = st.readyReplicas ?? 0;
    const done =
      (st.observedGeneration ?? 0) >= generation &&
      (st.updatedReplicas ?? 0) === want &&
      (st.availableReplicas ?? 0) === want &&
      ready === want;
    // A Deployment whose annotations a webhook stamps gets a new generation (apps/v1 counts annotation
    // changes), so "done" may come a poll later even when podgate changed nothing.
    const line =
      unchanged && done
        ? `${name} rollout unchanged, ${ready}/${want} ready`
        : `${name} rollout: ${ready}/${want} ready, ${st.updatedReplicas ?? 0} updated`;
    if (line !== last) progress(line);
    last = line;
    if (done) return { ready: true, replicas: want, readyReplicas: ready, changed: !unchanged };
    if (Date.now() > deadline) {
      throw new DeployError(
        name,
        `${name} not ready after ${Math.round((deps.rolloutTimeoutMs ?? 180_000) / 1000)} s (${ready}/${want} ready); check \`podgate k8s status\` and the pod's events, then run deploy again`,
      );
    }
    await sleep(deps.pollMs ?? 1000);
  }
}

/** Container states a rollout does not recover from without a change (image, config, command). */
const STUCK_REASONS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

interface PodView {
  metadata: { name?: string };
  status?: {
    containerStatuses?: { name: string; state?: { waiting?: { reason?: string; message?: string } } }[];
  };
}

/**
 * Why the rollout cannot finish, from what the controllers and the kubelet report: the Deployment's
 * ReplicaFailure (the ReplicaSet's FailedCreate, e.g. a PodSecurity or quota refusal) or
 * ProgressDeadlineExceeded conditions, or a pod container stuck in an image pull or crash loop.
 */
async function rolloutFailure(dep: KubeObject, kube: KubeApi): Promise<string | undefined> {
  const st = (dep.status ?? {}) as DeploymentStatus;
  for (const c of st.conditions ?? []) {
    if (c.type === 'ReplicaFailure' && c.status === 'True')
      return `${c.reason ?? 'ReplicaFailure'}: ${c.message ?? ''}`;
    if (c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded') {
      return `${c.reason}: ${c.message ?? ''}`;
    }
  }
  const match = (dep.spec as { selector?: { matchLabels?: Record<string, string> } } | undefined)?.selector
    ?.matchLabels;
  if (!match) return undefined;
  // Reading pods is best effort: without the right, the conditions above and the deadline remain.
  const pods = await kube
    .list('v1', 'Pod', {
      namespace: dep.metadata.namespace,
      labelSelector: Object.entries(match)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    })
    .catch(() => undefined);
  for (const pod of (pods?.items ?? []) as unknown as PodView[]) {
    for (const cs of pod.status?.containerStatuses ?? []) {
      const w = cs.state?.waiting;
      if (w?.reason && STUCK_REASONS.has(w.reason)) {
        return `pod ${pod.metadata.name ?? '?'} container ${cs.name}: ${w.reason}${w.message ? `: ${w.message}` : ''}`;
      }
    }
  }
  return undefined;
}
