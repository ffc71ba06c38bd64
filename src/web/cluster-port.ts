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

/**
 * Flattens a discovery result into rows. Understands `{ value, source }` leaves (and `values` /
 * `sources` side tables); anything else is shown as it is. Keys named warnings/overlaps become
 * warnings.
 */
export function describeDiscovery(d: unknown): { rows: DiscoveryRow[]; warnings: string[]; at?: string } {
  const rows: DiscoveryRow[] = [];
  const warnings: string[] = [];
  if (!d || typeof d !== 'object') return { rows, warnings };
  const obj = d as Record<string, unknown>;
  const sources = (obj.sources && typeof obj.sources === 'object' ? obj.sources : {}) as Record<string, unknown>;
  const values = (obj.values && typeof obj.values === 'object' ? obj.values : obj) as Record<string, unknown>;
  let at: string | undefined;
  for (const key of ['warnings', 'overlaps']) {
    const w = obj[key] ?? values[key];
    if (Array.isArray(w)) warnings.push(...w.map((x) => (typeof x === 'string' ? x : (x as { message?: string }).message ?? JSON.stringify(x))));
  }
  for (const [name, v] of Object.entries(values)) {
    if (['warnings', 'overlaps', 'sources', 'values'].includes(name)) continue;
    if (name === 'discoveredAt' || name === 'at') {
      at = show(v);
      continue;
    }
    if (v && typeof v === 'object' && !Array.isArray(v) && 'value' in v) {
      const leaf = v as { value: unknown; source?: unknown };
      rows.push({ name, value: show(leaf.value), source: show(leaf.source ?? sources[name]) });
    } else {
      rows.push({ name, value: show(v), source: sources[name] === undefined ? '' : show(sources[name]) });
    }
  }
  return { rows, warnings, at };
}

/** Manifests as one YAML text for download, whatever form the cluster module returns. */
export function manifestsText(m: unknown): string {
  if (typeof m === 'string') return m;
  if (Array.isArray(m)) return m.map((x) => (typeof x === 'string' ? x : JSON.stringify(x, null, 2))).join('\n---\n');
  if (m && typeof m === 'object' && 'yaml' in m && typeof (m as { yaml: unknown }).yaml === 'string') return (m as { yaml: string }).yaml;
  return JSON.stringify(m, null, 2);
}
