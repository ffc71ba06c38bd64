/**
 * Server-side apply as the fake API server models it (see fake-kube-api.ts for what is left out).
 * Field ownership is tracked per leaf path; lists are atomic (no listType=map merge keys), which is
 * what `managedFields` records for them as a whole when they have no keys.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };
export type Path = string[];

export interface ManagedEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: JsonObject;
}

/** Identity and server-owned fields are never owned by a manager. */
const SKIP = new Set([
  'apiVersion',
  'kind',
  'metadata.name',
  'metadata.namespace',
  'metadata.resourceVersion',
  'metadata.uid',
  'metadata.creationTimestamp',
  'metadata.generation',
  'metadata.managedFields',
  'status',
]);

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Leaf paths of an object (an empty object or any array counts as a leaf). */
export function leafPaths(obj: JsonObject, prefix: Path = []): Path[] {
  const out: Path[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const p = [...prefix, k];
    if (SKIP.has(p.join('.'))) continue;
    if (isObject(v) && Object.keys(v).length > 0) out.push(...leafPaths(v, p));
    else out.push(p);
  }
  return out;
}

export function getPath(obj: Json | undefined, path: Path): Json | undefined {
  let node: Json | undefined = obj;
  for (const k of path) {
    if (!isObject(node)) return undefined;
    node = node[k];
  }
  return node;
}

function setPath(obj: JsonObject, path: Path, value: Json): void {
  let node = obj;
  for (const k of path.slice(0, -1)) {
    if (!isObject(node[k])) node[k] = {};
    node = node[k] as JsonObject;
  }
  node[path[path.length - 1]!] = structuredClone(value);
}

function deletePath(obj: JsonObject, path: Path): void {
  const parents: JsonObject[] = [];
  let node = obj;
  for (const k of path.slice(0, -1)) {
    if (!isObject(node[k])) return;
    parents.push(node);
    node = node[k] as JsonObject;
  }
  delete node[path[path.length - 1]!];
  // Drop maps that became empty because of the removal, as the API server does.
  for (let i = path.length - 2; i >= 0; i--) {
    const parent = parents[i]!;
    const child = parent[path[i]!];
    if (isObject(child) && Object.keys(child).length === 0 && path[i] !== 'data') delete parent[path[i]!];
    else break;
  }
}

/** fieldsV1 of a set of paths: {"f:data": {"f:key": {}}}. */
export function toFieldsV1(paths: Path[]): JsonObject {
  const root: JsonObject = {};
  for (const p of paths) {
    let node = root;
    for (const k of p) {
      const key = `f:${k}`;
      if (!isObject(node[key])) node[key] = {};
      node = node[key] as JsonObject;
    }
  }
  return root;
}

export function fromFieldsV1(f: JsonObject, prefix: Path = []): Path[] {
  const out: Path[] = [];
  for (const [k, v] of Object.entries(f)) {
    if (!k.startsWith('f:')) continue;
    const p = [...prefix, k.slice(2)];
    if (isObject(v) && Object.keys(v).length > 0) out.push(...fromFieldsV1(v, p));
    else out.push(p);
  }
  return out;
}

const key = (p: Path) => p.join('\u0000');

export interface ApplyOutcome {
  object: JsonObject;
  managedFields: ManagedEntry[];
  /** Paths owned by other managers with a different value (empty when forced). */
  conflicts: { manager: string; apiVersion: string; path: Path }[];
}

/**
 * Applies `config` for `manager` to `live` (undefined when creating). Without `force`, fields another
 * manager owns with a different value are conflicts and nothing changes; with `force` ownership moves.
 * Fields this manager applied before and no longer applies are removed unless someone else owns them.
 */
export function serverSideApply(
  live: JsonObject | undefined,
  managed: ManagedEntry[],
  config: JsonObject,
  manager: string,
  force: boolean,
  now: string,
): ApplyOutcome {
  const applied = leafPaths(config);
  const appliedKeys = new Set(applied.map(key));
  const conflicts: ApplyOutcome['conflicts'] = [];
  const others = managed.filter((m) => !(m.manager === manager && m.operation === 'Apply'));
  for (const m of others) {
    for (const p of fromFieldsV1(m.fieldsV1)) {
      if (!appliedKeys.has(key(p))) continue;
      if (JSON.stringify(getPath(live, p)) !== JSON.stringify(getPath(config, p))) {
        conflicts.push({ manager: m.manager, apiVersion: m.apiVersion, path: p });
      }
    }
  }
  if (conflicts.length > 0 && !force)
    return { object: live ?? config, managedFields: managed, conflicts: conflicts };

  const object: JsonObject = structuredClone(live ?? {});
  const mine = managed.find((m) => m.manager === manager && m.operation === 'Apply');
  const ownedByOthers = new Set<string>();
  const newOthers: ManagedEntry[] = [];
  for (const m of others) {
    const kept = fromFieldsV1(m.fieldsV1).filter(
      (p) => !(force && appliedKeys.has(key(p)) && conflicts.some((c) => key(c.path) === key(p))),
    );
    kept.forEach((p) => ownedByOthers.add(key(p)));
    if (kept.length > 0) newOthers.push({ ...m, fieldsV1: toFieldsV1(kept) });
  }
  for (const p of mine ? fromFieldsV1(mine.fieldsV1) : []) {
    if (!appliedKeys.has(key(p)) && !ownedByOthers.has(key(p))) deletePath(object, p);
  }
  for (const p of applied) setPath(object, p, getPath(config, p)!);
  for (const k of ['apiVersion', 'kind'] as const) if (config[k] !== undefined) object[k] = config[k]!;
  const entry: ManagedEntry = {
    manager,
    operation: 'Apply',
    apiVersion: String(config.apiVersion ?? 'v1'),
    time: now,
    fieldsType: 'FieldsV1',
    fieldsV1: toFieldsV1(applied),
  };
  const sameOwnership =
    mine !== undefined && JSON.stringify(mine.fieldsV1) === JSON.stringify(entry.fieldsV1);
  return {
    object,
    managedFields: [...newOthers, sameOwnership ? { ...entry, time: mine.time } : entry],
    conflicts: [],
  };
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
