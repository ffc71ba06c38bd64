/**
 * Cluster discovery: pod and service networks, cluster DNS and node addresses, each with the source it
 * came from, warnings where sources disagree, and the overlap check against podgate's own ranges.
 */
import type { Config } from '../config/schema.js';
import { parseCidr, overlaps, type Cidr } from '../lib/cidr.js';
import { findRangeOverlaps } from './range-overlaps.js';
import { logger } from '../lib/logger.js';
import type { SettingsStore } from '../store/types.js';
import type { KubeApi, KubeObject } from './kube-api.js';
import {
  parseServiceRangeError,
  readCalicoPools,
  readCiliumConfig,
  readFlannelConfig,
  readK3sNode,
  readKubeadmConfig,
  readNodeInternalIps,
  readNodePodCidrs,
  readServiceCidrObjects,
  type CidrSource,
} from './discovery-sources.js';
import { KubeApiError } from './kube-api.js';

const log = logger.child({ module: 'cluster.discovery' });

export { findRangeOverlaps };

/** Settings key the result is stored under (read by services/network.ts for profiles and server.conf). */
export const DISCOVERY_SETTING = 'cluster.discovery';

export interface DiscoveryResult {
  discoveredAt: string;
  podCidrs: string[];
  podCidrSource: string;
  serviceCidrs: string[];
  serviceCidrSource: string;
  dnsServer?: string;
  /** The cluster DNS Service's IPv6 ClusterIP on a dual-stack cluster (spec.clusterIPs). */
  dnsServer6?: string;
  clusterDomain: string;
  clusterDomainSource: string;
  nodeIps: string[];
  /** Everything every source said, chosen or not. */
  sources: { pods: CidrSource[]; services: CidrSource[] };
  warnings: string[];
  /** Overlaps between the client subnet, office LANs and the effective cluster ranges (config wins). */
  overlaps: string[];
}

export interface DiscoveryDeps {
  kube: KubeApi;
  settings?: SettingsStore;
  now?: () => Date;
}

const cm = (kube: KubeApi, namespace: string, name: string) =>
  kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace, name });

/** A probe Service that can never be created: 0.0.0.0 is outside every service range. */
export const PROBE_SERVICE: KubeObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'podgate-range-probe', namespace: 'default' },
  spec: { clusterIP: '0.0.0.0', ports: [{ port: 443, protocol: 'TCP' }] },
};

/** Asks the API server for its service range with a dry-run create; undefined if it does not say. */
export async function probeServiceRange(kube: KubeApi): Promise<string | undefined> {
  try {
    await kube.createDryRun(structuredClone(PROBE_SERVICE));
    return undefined; // Kubernetes ≤1.22 skips allocation on dry-run and accepts the object
  } catch (err) {
    if (err instanceof KubeApiError && err.kubeStatus === 422) return parseServiceRangeError(err.kubeMessage);
    throw err;
  }
}

/**
 * The probe is the last resort and the least reliable source: a webhook that refuses dry-run requests, a
 * missing `create services` right or an overloaded server must cost only this source, never discovery.
 */
async function probeOrWarn(kube: KubeApi, warnings: string[]): Promise<string | undefined> {
  try {
    return await probeServiceRange(kube);
  } catch (err) {
    if (!(err instanceof KubeApiError) || err.kubeStatus === 401) throw err;
    warnings.push(`dry-run Service probe skipped (${err.kubeStatus}): ${err.message}`);
    return undefined;
  }
}

function normalise(cidrs: readonly string[], source: string, warnings: string[]): string[] {
  const out: string[] = [];
  for (const c of cidrs) {
    try {
      out.push(parseCidr(source, c).text);
    } catch {
      warnings.push(`${source}: ignored "${c}" (not a CIDR)`);
    }
  }
  return [...new Set(out)];
}

const within = (inner: Cidr, outer: Cidr) => overlaps(inner, outer) && outer.prefix <= inner.prefix;

/** Warns for every CIDR of a non-chosen source that is not inside the chosen ranges. */
function compare(
  kind: string,
  chosen: CidrSource,
  others: CidrSource[],
  warnings: string[],
  twoWay: boolean,
): void {
  const ranges = chosen.cidrs.map((c) => parseCidr(kind, c));
  for (const o of others) {
    for (const c of o.cidrs) {
      if (!ranges.some((r) => within(parseCidr(kind, c), r))) {
        warnings.push(
          `${kind} sources disagree: ${c} from ${o.source} is not inside ${chosen.cidrs.join(', ')} from ${chosen.source}`,
        );
      }
    }
    // Cluster-wide pod sources should name the same ranges; a chosen range they do not mention is suspicious
    // too. Not for services: ServiceCIDR objects may extend the range kubeadm was set up with.
    if (twoWay && !o.source.startsWith('node.spec.podCIDRs') && o.cidrs.length > 0) {
      const theirs = o.cidrs.map((c) => parseCidr(kind, c));
      for (const r of ranges) {
        if (
          theirs.some((t) => t.family === r.family) &&
          !theirs.some((t) => t.text === r.text) &&
          !theirs.some((t) => within(r, t))
        ) {
          warnings.push(
            `${kind} sources disagree: ${r.text} from ${chosen.source} is not named by ${o.source} (${o.cidrs.join(', ')})`,
          );
        }
      }
    }
  }
}

/** Collects named CIDR sources, normalised; sources that name nothing are left out. */
function sourceCollector(warnings: string[]): {
  sources: CidrSource[];
  add: (source: string, cidrs: string[]) => void;
} {
  const sources: CidrSource[] = [];
  const add = (source: string, cidrs: string[]) => {
    const n = normalise(cidrs, source, warnings);
    if (n.length > 0) sources.push({ source, cidrs: n });
  };
  return { sources, add };
}

async function podSources(
  kube: KubeApi,
  nodes: KubeObject[],
  kubeadmPods: string[],
  warnings: string[],
): Promise<CidrSource[]> {
  const { sources, add } = sourceCollector(warnings);
  // The CNI's own configuration is what pods actually get; kubeadm and node slices only describe intent.
  for (const apiVersion of ['crd.projectcalico.org/v1', 'projectcalico.org/v3']) {
    const pools = await kube.list(apiVersion, 'IPPool');
    if (pools && pools.items.length > 0) {
      add(`Calico IPPools (${apiVersion})`, readCalicoPools(pools.items));
      break;
    }
  }
  add(
    'cilium-config cluster-pool (kube-system)',
    readCiliumConfig(await cm(kube, 'kube-system', 'cilium-config')),
  );
  for (const ns of ['kube-flannel', 'kube-system']) {
    const flannel = await cm(kube, ns, 'kube-flannel-cfg');
    if (flannel) {
      add(`kube-flannel-cfg net-conf.json (${ns})`, readFlannelConfig(flannel));
      break;
    }
  }
  add('kubeadm-config networking.podSubnet', kubeadmPods);
  const k3s = readK3sNode(nodes);
  if (k3s) add(`${k3s.origin}: cluster-cidr`, k3s.clusterCidr);
  add('node.spec.podCIDRs (per-node ranges)', readNodePodCidrs(nodes));
  return sources;
}

async function serviceSources(
  kube: KubeApi,
  nodes: KubeObject[],
  kubeadmSvcs: string[],
  warnings: string[],
): Promise<CidrSource[]> {
  const { sources, add } = sourceCollector(warnings);
  for (const v of ['networking.k8s.io/v1', 'networking.k8s.io/v1beta1']) {
    const list = await kube.list(v, 'ServiceCIDR');
    if (list && list.items.length > 0) {
      add(`ServiceCIDR objects (${v})`, readServiceCidrObjects(list.items));
      for (const item of list.items.filter((i) => i.metadata.deletionTimestamp)) {
        // Still routed: Services keep their ClusterIPs from it until they are deleted (OrphanIPAddress).
        warnings.push(
          `ServiceCIDR ${item.metadata.name} is being deleted; its range stays routed while Services still use it`,
        );
      }
      break;
    }
  }
  add('kubeadm-config networking.serviceSubnet', kubeadmSvcs);
  const k3s = readK3sNode(nodes);
  if (k3s) add(`${k3s.origin}: service-cidr`, k3s.serviceCidr);
  if (sources.length === 0) {
    const range = await probeOrWarn(kube, warnings);
    if (range) add('dry-run Service probe (API server error message)', [range]);
    else
      warnings.push(
        'service CIDR unknown: no ServiceCIDR API, no kubeadm-config, and the dry-run probe named no range; set vpn.routes.services',
      );
  }
  return sources;
}

/**
 * Every read in discovery is optional: a source podgate may not read (403, e.g. a tighter RBAC than
 * k8s/ grants) or that the server cannot answer right now (a 503 from an aggregated API such as Calico's,
 * a 500 from a broken webhook or CRD) is skipped with a warning naming it instead of failing the whole
 * discovery. Only 401 (the credentials themselves are wrong) and transport errors (no API server at all)
 * still fail: then every source would be missing and the warnings would hide the real problem.
 */
function tolerant(kube: KubeApi, warnings: string[]): KubeApi {
  const skip = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof KubeApiError && err.kubeStatus === 403) {
        warnings.push(`skipped (no permission): ${err.message}`);
        return undefined;
      }
      if (err instanceof KubeApiError && err.kubeStatus !== 401) {
        warnings.push(`skipped (${err.kubeStatus} from the API server): ${err.message}`);
        return undefined;
      }
      throw err;
    }
  };
  return {
    ...kube,
    get: (ref) => skip(() => kube.get(ref)),
    list: (apiVersion, kind, opts) => skip(() => kube.list(apiVersion, kind, opts)),
    createDryRun: (obj) => kube.createDryRun(obj),
  };
}

/** Reads everything from the cluster. Stores the result when `settings` is given. */
export async function discover(config: Config, deps: DiscoveryDeps): Promise<DiscoveryResult> {
  const warnings: string[] = [];
  const kube = tolerant(deps.kube, warnings);
  const nodes = (await kube.list('v1', 'Node'))?.items ?? [];
  const kubeadm = readKubeadmConfig(await cm(kube, 'kube-system', 'kubeadm-config'));
  const k3s = readK3sNode(nodes);
  const pods = await podSources(kube, nodes, kubeadm?.podSubnet ?? [], warnings);
  const services = await serviceSources(kube, nodes, kubeadm?.serviceSubnet ?? [], warnings);
  if (pods[0]) compare('pod CIDR', pods[0], pods.slice(1), warnings, true);
  else
    warnings.push(
      'pod CIDR unknown: no CNI configuration, kubeadm-config or node podCIDRs found; set vpn.routes.pods',
    );
  if (services[0]) compare('service CIDR', services[0], services.slice(1), warnings, false);

  const dns = await kube.get({
    apiVersion: 'v1',
    kind: 'Service',
    namespace: 'kube-system',
    name: 'kube-dns',
  });
  const dnsSpec = dns?.spec as { clusterIP?: string; clusterIPs?: string[] } | undefined;
  const dnsIp = dnsSpec?.clusterIP;
  const dnsIp6 = (dnsSpec?.clusterIPs ?? []).find((ip) => ip.includes(':') && ip !== dnsIp);
  if (!dnsIp || dnsIp === 'None')
    warnings.push('cluster DNS unknown: no ClusterIP on kube-system/kube-dns; set vpn.dns.servers');
  const domain = kubeadm?.dnsDomain
    ? { value: kubeadm.dnsDomain, source: 'kubeadm-config networking.dnsDomain' }
    : k3s?.clusterDomain
      ? { value: k3s.clusterDomain, source: `${k3s.origin}: cluster-domain` }
      : { value: 'cluster.local', source: 'default' };
  const nodeIps = readNodeInternalIps(nodes);
  if (nodeIps.length === 0) warnings.push('no node InternalIP found; set vpn.endpoints');

  const result: DiscoveryResult = {
    discoveredAt: (deps.now?.() ?? new Date()).toISOString(),
    podCidrs: pods[0]?.cidrs ?? [],
    podCidrSource: pods[0]?.source ?? 'none',
    serviceCidrs: services[0]?.cidrs ?? [],
    serviceCidrSource: services[0]?.source ?? 'none',
    dnsServer: dnsIp && dnsIp !== 'None' ? dnsIp : undefined,
    ...(dnsIp6 ? { dnsServer6: dnsIp6 } : {}),
    clusterDomain: domain.value,
    clusterDomainSource: domain.source,
    nodeIps,
    sources: { pods, services },
    warnings,
    overlaps: [],
  };
  result.overlaps = findRangeOverlaps(config, result);
  for (const w of warnings) log.warn(w);
  if (deps.settings) await deps.settings.setSetting(DISCOVERY_SETTING, JSON.stringify(result));
  return result;
}

/** The last stored discovery, if any. */
export async function lastDiscovery(settings: SettingsStore): Promise<DiscoveryResult | undefined> {
  const raw = await settings.getSetting(DISCOVERY_SETTING);
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as DiscoveryResult;
  } catch {
    return undefined;
  }
}
