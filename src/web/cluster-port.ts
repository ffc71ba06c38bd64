/**
 * What the web app needs from the cluster module (src/cluster/index.ts `ClusterService`). Typed
 * structurally and loosely on purpose: the page renders whatever discovery reports (values with their
 * sources, overlap warnings) without the web layer depending on the cluster module's internals.
 */
export interface ClusterPort {
  discover(): Promise<unknown>;
  lastDiscovery(): unknown;
  /** The manifests as one multi-document YAML text (or a list of objects / texts). */
  manifests(): unknown;
  deploy(onProgress: (event: unknown) => void): Promise<unknown>;
  status(): Promise<unknown>;
}

export interface DiscoveryRow {
  name: string;
  value: string;
  source: string;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '—';
  if (Array.isArray(v)) return v.map(show).join(', ') || '—';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const LABELS: Record<string, string> = {
  podCidrs: 'Pod ranges',
  serviceCidrs: 'Service ranges',
  dnsServer: 'DNS server',
  clusterDomain: 'Cluster domain',
  nodeIps: 'Node addresses',
};

/**
 * Flattens a discovery result (src/cluster DiscoveryResult) into rows of value + source: a key `x`
 * takes its source from `xSource` (or `xsSource` without the plural s, e.g. podCidrs/podCidrSource).
 * `warnings` and `overlaps` become warnings; `sources` (every source's answer) becomes extra rows.
 */
export function describeDiscovery(d: unknown): { rows: DiscoveryRow[]; warnings: string[]; at?: string } {
  const rows: DiscoveryRow[] = [];
  const warnings: string[] = [];
  if (!d || typeof d !== 'object') return { rows, warnings };
  const obj = d as Record<string, unknown>;
  let at: string | undefined;
  for (const key of ['overlaps', 'warnings']) {
    const w = obj[key];
    if (Array.isArray(w)) warnings.push(...w.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))));
  }
  for (const [name, v] of Object.entries(obj)) {
    if (['warnings', 'overlaps', 'sources'].includes(name) || name.endsWith('Source')) continue;
    if (name === 'discoveredAt') {
      at = show(v);
      continue;
    }
    const source = obj[`${name}Source`] ?? obj[`${name.replace(/s$/, '')}Source`];
    rows.push({
      name: LABELS[name] ?? name,
      value: show(v),
      source: source === undefined ? '' : show(source),
    });
  }
  const sources = obj.sources as Record<string, unknown> | undefined;
  if (sources && typeof sources === 'object') {
    for (const [kind, list] of Object.entries(sources)) {
      if (!Array.isArray(list)) continue;
      for (const item of list as { source?: unknown; cidrs?: unknown }[]) {
        rows.push({ name: `${kind} (seen)`, value: show(item.cidrs), source: show(item.source) });
      }
    }
  }
  return { rows, warnings, at };
}

/** Manifests as one YAML text for download, whatever form the cluster module returns. */
export function manifestsText(m: unknown): string {
  if (typeof m === 'string') return m;
  if (Array.isArray(m)) {
    return (
      m
        .map((x) =>
          typeof x === 'string'
            ? x
            : x && typeof x === 'object' && typeof (x as { yaml?: unknown }).yaml === 'string'
              ? (x as { yaml: string }).yaml
              : JSON.stringify(x, null, 2),
        )
        .map((y) => y.replace(/^---\n/, '').trimEnd())
        .join('\n---\n') + '\n'
    );
  }
  if (m && typeof m === 'object' && 'yaml' in m && typeof (m as { yaml: unknown }).yaml === 'string')
    return (m as { yaml: string }).yaml;
  return JSON.stringify(m, null, 2);
}
