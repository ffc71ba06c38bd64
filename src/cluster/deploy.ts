/**
 * Applies the manifests with server-side apply (field manager `podgate`, force), one object at a time
 * in dependency order, reporting each as created / configured / unchanged, then waits for the rollout.
 * Safe to re-run: a deploy that failed half-way continues where it stopped.
 */
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { refOf, refText, type KubeApi, type KubeObject } from './kube-api.js';

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

export async function applyAll(objects: readonly KubeObject[], deps: DeployDeps): Promise<DeployResult> {
  const progress = deps.onProgress ?? (() => undefined);
  const result: DeployResult = {
    objects: [],
    rollout: { ready: false, replicas: 0, readyReplicas: 0, changed: false },
  };
  let workload: { obj: KubeObject; before?: KubeObject; after: KubeObject } | undefined;
  for (const [i, obj] of objects.entries()) {
    const name = refText({ kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace });
    let before: KubeObject | undefined;
    let after: KubeObject;
    try {
      before = await deps.kube.get(refOf(obj));
      after = await deps.kube.apply(structuredClone(obj));
    } catch (err) {
      const done = i === 0 ? 'nothing was applied' : `the ${i} object(s) before it were applied`;
      throw new DeployError(
        name,
        `deploy stopped at ${name} (${i + 1}/${objects.length}): ${(err as Error).message}; ${done}, run deploy again to continue`,
        err,
      );
    }
    // The API server bumps resourceVersion only when an apply really changed the object.
    const action: ApplyAction = !before ? 'created' : rv(before) === rv(after) ? 'unchanged' : 'configured';
    result.objects.push({ object: name, action });
    progress(`${name} ${action}`);
    log.info({ object: name, action }, 'applied');
    if (obj.kind === 'Deployment') workload = { obj, before, after };
  }
  if (workload)
    result.rollout = await waitForRollout(
      workload.after,
      deps,
      workload.before !== undefined && rv(workload.before) === rv(workload.after),
    );
  return result;
}

interface DeploymentStatus {
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
    const st = (live?.status ?? {}) as DeploymentStatus;
    const generation = Number(live?.metadata.generation ?? 0);
    const ready = st.readyReplicas ?? 0;
    const done =
      (st.observedGeneration ?? 0) >= generation &&
      (st.updatedReplicas ?? 0) === want &&
      (st.availableReplicas ?? 0) === want &&
      ready === want;
    const line = `${name} rollout: ${ready}/${want} ready, ${st.updatedReplicas ?? 0} updated`;
    if (line !== last)
      progress(unchanged && done ? `${name} rollout unchanged, ${ready}/${want} ready` : line);
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
