/**
 * What the web app uses of the cluster module: the ClusterService methods the pages and the API call.
 * Only types are imported here, so the web layer does not load the Kubernetes client (about 70 MB
 * resident) unless `serve` wires a real cluster.
 */
import type { ClusterService, DiscoveryResult } from '../cluster/index.js';

export type ClusterPort = Pick<
  ClusterService,
  'discover' | 'lastDiscovery' | 'manifests' | 'deploy' | 'status'
> &
  Partial<Pick<ClusterService, 'serverPodIps'>>;

export interface DiscoveryRow {
  name: string;
  value: string;
  source: string;
}

const list = (values: readonly string[]): string => values.join(', ') || '—';

/**
 * A discovery result as rows of value + source for the cluster page, then one row per range each
 * source reported (chosen or not); range overlaps come before the other warnings.
 */
export function describeDiscovery(d: DiscoveryResult | undefined): {
  rows: DiscoveryRow[];
  warnings: string[];
  at?: string;
} {
  if (!d) return { rows: [], warnings: [] };
  const rows: DiscoveryRow[] = [
    { name: 'Pod ranges', value: list(d.podCidrs), source: d.podCidrSource },
    { name: 'Service ranges', value: list(d.serviceCidrs), source: d.serviceCidrSource },
    { name: 'DNS server', value: d.dnsServer ?? '—', source: '' },
    { name: 'Cluster domain', value: d.clusterDomain, source: d.clusterDomainSource },
    { name: 'Node addresses', value: list(d.nodeIps), source: '' },
  ];
  for (const [kind, seen] of Object.entries(d.sources)) {
    for (const s of seen) rows.push({ name: `${kind} (seen)`, value: list(s.cidrs), source: s.source });
  }
  return { rows, warnings: [...d.overlaps, ...d.warnings], at: d.discoveredAt };
}

/** The manifest files as one multi-document YAML text for download, in apply order. */
export function manifestsText(files: readonly { yaml: string }[]): string {
  return files.map((f) => f.yaml.replace(/^---\n/, '').trimEnd()).join('\n---\n') + '\n';
}
