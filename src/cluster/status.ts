import { LABELS, OBJECT_NAMES } from './pod-layout.js';
import type { KubeApi, KubeObject } from './kube-api.js';
import { readAgentStatus, type AgentStatus } from './agent-status.js';
import { crlKeyIds, OWNER_ANNOTATION, ownerOf } from './ownership.js';
import { bundleFromSecret } from './secret-watch-source.js';

export interface PodStatus {
  name: string;
  phase: string;
  ready: boolean;
  podIP?: string;
  hostIP?: string;
  containers: { name: string; ready: boolean; restarts: number }[];
}

export interface ClusterStatus {
  namespace: string;
  deployment?: {
    replicas: number;
    readyReplicas: number;
    updatedReplicas: number;
    generation: number;
    observedGeneration: number;
  };
  service?: { type: string; nodePort?: number; port?: number; protocol?: string };
  pods: PodStatus[];
  /** Ready endpoint addresses of the Service ("10.244.1.5:30030/UDP"). */
  endpoints: string[];
  agent: AgentStatus;
  /** CRL number the manager published last (undefined when unknown to the caller). */
  publishedCrlNumber?: number;
  /** What the podgate-crl Secret holds: its CRL number, and the CA key id it is marked with. */
  crlSecret?: { crlNumber: number; owner?: string; ownedByAnotherCa: boolean };
}

const selector = Object.entries(LABELS)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

function pod(p: KubeObject): PodStatus {
  const st = (p.status ?? {}) as {
    phase?: string;
    podIP?: string;
    hostIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready: boolean; restartCount?: number }[];
  };
  return {
    name: p.metadata.name ?? '',
    phase: st.phase ?? 'Unknown',
    ready: st.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    podIP: st.podIP,
    hostIP: st.hostIP,
    containers: (st.containerStatuses ?? []).map((c) => ({
      name: c.name,
      ready: c.ready,
      restarts: c.restartCount ?? 0,
    })),
  };
}

/** The IPs of the running, ready server pods (what "Check my connection" probes). */
export async function readServerPodIps(kube: KubeApi, namespace: string): Promise<string[]> {
  const pods = await kube.list('v1', 'Pod', { namespace, labelSelector: selector });
  return (pods?.items ?? [])
    .map(pod)
    .filter((p) => p.phase === 'Running' && p.ready && p.podIP)
    .map((p) => p.podIP!);
}

/** Reads the Deployment, its pods, the Service and its Endpoints, and the agent's status ConfigMap. */
export async function readClusterStatus(
  kube: KubeApi,
  namespace: string,
  publishedCrlNumber?: number,
  ownKeyIds: readonly string[] = [],
): Promise<ClusterStatus> {
  const name = OBJECT_NAMES.app;
  const [dep, svc, ep, pods, agent, crl] = await Promise.all([
    kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace, name }),
    kube.get({ apiVersion: 'v1', kind: 'Service', namespace, name }),
    kube.get({ apiVersion: 'v1', kind: 'Endpoints', namespace, name }),
    kube.list('v1', 'Pod', { namespace, labelSelector: selector }),
    readAgentStatus(kube, namespace),
    kube.get({ apiVersion: 'v1', kind: 'Secret', namespace, name: OBJECT_NAMES.crlSecret }),
  ]);
  let crlSecret: ClusterStatus['crlSecret'];
  try {
    const held = crl ? bundleFromSecret(crl) : undefined;
    const owner = ownerOf(crl) ?? (held ? crlKeyIds(held.crlPem)[0] : undefined);
    if (held)
      crlSecret = {
        crlNumber: held.crlNumber,
        ...(owner ? { owner } : {}),
        ownedByAnotherCa: owner !== undefined && ownKeyIds.length > 0 && !ownKeyIds.includes(owner),
      };
  } catch {
    /* an unreadable Secret: the publisher replaces it */
  }
  const ds = (dep?.status ?? {}) as Record<string, number | undefined>;
  const spec = (svc?.spec ?? {}) as {
    type?: string;
    ports?: { nodePort?: number; port?: number; protocol?: string }[];
  };
  const subsets = (ep?.subsets ?? []) as {
    addresses?: { ip: string }[];
    ports?: { port: number; protocol?: string }[];
  }[];
  return {
    namespace,
    deployment: dep && {
      replicas: Number((dep.spec as { replicas?: number }).replicas ?? 1),
      readyReplicas: ds.readyReplicas ?? 0,
      updatedReplicas: ds.updatedReplicas ?? 0,
      generation: Number(dep.metadata.generation ?? 0),
      observedGeneration: ds.observedGeneration ?? 0,
    },
    service: svc && {
      type: spec.type ?? 'ClusterIP',
      nodePort: spec.ports?.[0]?.nodePort,
      port: spec.ports?.[0]?.port,
      protocol: spec.ports?.[0]?.protocol,
    },
    pods: (pods?.items ?? []).map(pod),
    endpoints: subsets.flatMap((s) =>
      (s.addresses ?? []).flatMap((a) =>
        (s.ports ?? []).map((p) => `${a.ip}:${p.port}/${p.protocol ?? 'TCP'}`),
      ),
    ),
    agent,
    publishedCrlNumber,
    ...(crlSecret ? { crlSecret } : {}),
  };
}

/** Human-readable lines for `podgate k8s status`. */
export function formatStatus(s: ClusterStatus): string[] {
  const lines: string[] = [];
  const d = s.deployment;
  lines.push(
    d
      ? `deployment ${s.namespace}/${OBJECT_NAMES.app}: ${d.readyReplicas}/${d.replicas} ready (generation ${d.generation}, observed ${d.observedGeneration})`
      : `deployment ${s.namespace}/${OBJECT_NAMES.app}: not found (run \`podgate k8s deploy\`)`,
  );
  if (s.service)
    lines.push(
      `service: ${s.service.type} port ${s.service.port ?? '?'} nodePort ${s.service.nodePort ?? '-'}/${s.service.protocol ?? '?'}`,
    );
  for (const p of s.pods) {
    const cs = p.containers
      .map(
        (c) => `${c.name}=${c.ready ? 'ready' : 'not ready'}${c.restarts ? ` (${c.restarts} restarts)` : ''}`,
      )
      .join(' ');
    lines.push(
      `pod ${p.name}: ${p.phase}${p.ready ? ', ready' : ', not ready'} ip ${p.podIP ?? '-'} node ${p.hostIP ?? '-'} ${cs}`,
    );
  }
  if (s.pods.length === 0) lines.push('pods: none');
  lines.push(`endpoints: ${s.endpoints.length > 0 ? s.endpoints.join(', ') : 'none'}`);
  const c = s.crlSecret;
  if (c?.ownedByAnotherCa) {
    lines.push(
      `CRL Secret: ERROR: marked ${OWNER_ANNOTATION}=${c.owner}, another podgate manager's CA: this manager's revocations are not published ` +
        '(take over deliberately with `podgate k8s deploy --take-over`)',
    );
  } else if (c && s.publishedCrlNumber !== undefined && c.crlNumber > s.publishedCrlNumber) {
    lines.push(
      `CRL Secret: ERROR: holds CRL #${c.crlNumber}, above this manager's #${s.publishedCrlNumber}: revocations made here are NOT in force ` +
        `(a restore from an older backup? restore it again with \`--crl-number-above ${c.crlNumber}\`)`,
    );
  }
  const a = s.agent;
  const crl =
    a.lastAppliedCrlNumber === undefined
      ? 'agent: no CRL applied yet'
      : `agent: CRL #${a.lastAppliedCrlNumber} applied at ${a.lastAppliedAt ?? '?'}${a.pod ? ` by ${a.pod}` : ''}`;
  const sync =
    s.publishedCrlNumber === undefined || a.lastAppliedCrlNumber === undefined
      ? ''
      : c?.ownedByAnotherCa || (c && c.crlNumber > s.publishedCrlNumber)
        ? " (not this manager's CRL: see the CRL Secret line)"
        : a.lastAppliedCrlNumber >= s.publishedCrlNumber
          ? ' (up to date)'
          : ` (behind: published #${s.publishedCrlNumber})`;
  lines.push(crl + sync);
  if (a.pending.length > 0)
    lines.push(
      `agent: ${a.pending.length} revocation(s) pending: ${a.pending.map((p) => p.commonName).join(', ')}`,
    );
  return lines;
}
