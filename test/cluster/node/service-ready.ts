/**
 * Waiting for a Service that was just created (or whose pods just rolled) before a test probes it.
 *
 * `kubectl rollout status` says the pods are Ready; it says nothing about the Service: the
 * EndpointSlice controller must publish the ready endpoints, and kube-proxy must see them and program
 * the node's rules. Until both happened a ClusterIP or NodePort answers nothing, or is refused. So a
 * probe of a fresh Service first waits for an EndpointSlice with a ready endpoint, then retries the
 * probe itself until it answers, both within one deadline; a timeout says which of the two never
 * came, with the last thing seen. The clock and the sleep are injected (unit tests drive them).
 */
import { exec } from '../../../src/lib/exec.js';

/** The part of a `discovery.k8s.io/v1` EndpointSliceList this helper reads. */
export interface EndpointSliceList {
  items: {
    endpoints?: { addresses: string[]; conditions?: { ready?: boolean | null } }[] | null;
    ports?: { port?: number | null }[] | null;
  }[];
}

/**
 * Addresses of endpoints that are ready. The API says a missing `ready` condition means ready
 * ("nil should be interpreted as true"); a slice without ports does not route traffic to anyone.
 */
export function readyAddresses(list: EndpointSliceList): string[] {
  const out: string[] = [];
  for (const slice of list.items) {
    if (!slice.ports || slice.ports.length === 0) continue;
    for (const e of slice.endpoints ?? []) if (e.conditions?.ready !== false) out.push(...e.addresses);
  }
  return out;
}

export interface ServiceWait<T> {
  /** `namespace/name`, for the messages. */
  service: string;
  /** The Service's EndpointSlices (label `kubernetes.io/service-name`). */
  slices: () => Promise<EndpointSliceList>;
  /** The probe through the Service: a value when it answered as expected, undefined (or a throw) when not. */
  probe?: () => Promise<T | undefined>;
  /** The whole wait, endpoints and probe together (default 120 s). */
  deadlineMs?: number;
  /** Pause between tries (default 500 ms). */
  stepMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Waits until the Service has a ready endpoint and then until `probe` answers, retrying both within
 * one deadline. Returns the probe's value (the ready addresses when there is no probe). Throws an
 * Error naming the Service, the step that never succeeded and the last answer or error.
 */
export async function waitForService<T>(
  o: ServiceWait<T> & { probe: () => Promise<T | undefined> },
): Promise<T>;
export async function waitForService(o: Omit<ServiceWait<never>, 'probe'>): Promise<string[]>;
export async function waitForService<T>(o: ServiceWait<T>): Promise<T | string[]> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const end = now() + (o.deadlineMs ?? 120_000);
  let last = 'nothing asked yet';
  let endpoints: string[] = [];
  let tries = 0;
  for (;;) {
    tries++;
    if (endpoints.length === 0) {
      try {
        endpoints = readyAddresses(await o.slices());
        last = endpoints.length
          ? `ready endpoints ${endpoints.join(', ')}`
          : 'no ready endpoint in its EndpointSlices';
      } catch (err) {
        last = `EndpointSlices not readable: ${(err as Error).message}`;
      }
    }
    if (endpoints.length > 0) {
      if (!o.probe) return endpoints;
      try {
        const v = await o.probe();
        if (v !== undefined) return v;
        last = `ready endpoints ${endpoints.join(', ')}, but the probe got no expected answer`;
      } catch (err) {
        last = `ready endpoints ${endpoints.join(', ')}, but the probe failed: ${(err as Error).message}`;
      }
    }
    if (now() >= end)
      throw new Error(
        `Service ${o.service} did not answer within ${o.deadlineMs ?? 120_000} ms (${tries} tries): ${last}`,
      );
    await sleep(o.stepMs ?? 500);
  }
}

/** The EndpointSlices of `namespace/name`, read with kubectl. */
export function kubectlSlices(
  kubectl: string,
  kubeconfig: string,
  namespace: string,
  name: string,
): () => Promise<EndpointSliceList> {
  return async () => {
    const r = await exec(
      [
        kubectl,
        '--kubeconfig',
        kubeconfig,
        '-n',
        namespace,
        'get',
        'endpointslices',
        '-l',
        `kubernetes.io/service-name=${name}`,
        '-o',
        'json',
      ],
      { timeoutMs: 30_000 },
    );
    return JSON.parse(r.stdout) as EndpointSliceList;
  };
}
