/**
 * Before deploy applies anything: asks the API server (SelfSubjectAccessReview) whether the identity
 * podgate uses may read and server-side apply each object, and create the ones that do not exist yet.
 * Missing rights stop the deploy with every missing verb and resource named and the command an admin
 * runs, instead of a 403 half-way through.
 */
import { refOf, type AccessCheck, type KubeApi, type KubeObject } from './kube-api.js';
import { MANAGER_SERVICE_ACCOUNT } from './manager-rbac.js';

/** API group and plural resource of each kind podgate applies. */
const RESOURCES: Record<string, { group: string; resource: string }> = {
  Namespace: { group: '', resource: 'namespaces' },
  ServiceAccount: { group: '', resource: 'serviceaccounts' },
  Secret: { group: '', resource: 'secrets' },
  ConfigMap: { group: '', resource: 'configmaps' },
  Service: { group: '', resource: 'services' },
  Role: { group: 'rbac.authorization.k8s.io', resource: 'roles' },
  RoleBinding: { group: 'rbac.authorization.k8s.io', resource: 'rolebindings' },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
  Deployment: { group: 'apps', resource: 'deployments' },
  PodDisruptionBudget: { group: 'policy', resource: 'poddisruptionbudgets' },
};

function check(obj: KubeObject, verb: string): AccessCheck | undefined {
  const r = RESOURCES[obj.kind];
  if (!r) return undefined;
  return { verb, ...r, namespace: obj.metadata.namespace, name: obj.metadata.name };
}

const resourceText = (c: AccessCheck) =>
  `${c.group ? `${c.resource}.${c.group}` : c.resource}${c.name ? `/${c.name}` : ''}`;

/** "in namespace vpn: get, patch secrets/podgate-server; create deployments.apps/podgate-openvpn". */
export function describeMissing(missing: readonly AccessCheck[]): string {
  const byScope = new Map<string, Map<string, string[]>>();
  for (const c of missing) {
    const scope = c.namespace ? `in namespace ${c.namespace}` : 'cluster-wide';
    const verbs = byScope.get(scope) ?? new Map<string, string[]>();
    byScope.set(scope, verbs);
    const key = resourceText(c);
    verbs.set(key, [...(verbs.get(key) ?? []), c.verb]);
  }
  return [...byScope.entries()]
    .map(
      ([scope, res]) => `${scope}: ${[...res.entries()].map(([r, v]) => `${v.join(', ')} ${r}`).join('; ')}`,
    )
    .join('; ');
}

/** The command that grants podgate's rights for a server in `namespace` to `user`. */
export function grantCommand(namespace: string, user: string | undefined): string {
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user ?? '');
  const own = `${MANAGER_SERVICE_ACCOUNT.namespace}/${MANAGER_SERVICE_ACCOUNT.name}`;
  const flag = sa && `${sa[1]}/${sa[2]}` !== own ? ` --service-account ${sa[1]}/${sa[2]}` : '';
  const base = namespace === 'middleware' && !flag ? ' (or `kubectl apply -k k8s/` again)' : '';
  return `\`podgate k8s rbac --namespace ${namespace}${flag} | kubectl apply -f -\`${base}`;
}

/** `bind` on each ClusterRole a ClusterRoleBinding of `objects` refers to. */
function bindChecks(objects: readonly KubeObject[]): AccessCheck[] {
  return objects
    .filter((o) => o.kind === 'ClusterRoleBinding')
    .map((o) => (o.roleRef as { kind?: string; name?: string } | undefined) ?? {})
    .filter((ref) => ref.kind === 'ClusterRole' && ref.name)
    .map((ref) => ({
      verb: 'bind',
      group: 'rbac.authorization.k8s.io',
      resource: 'clusterroles',
      name: ref.name,
    }));
}

export interface MissingRights {
  missing: AccessCheck[];
  user: string | undefined;
}

/**
 * The rights deploy lacks for `objects`, or undefined when it has them all or the API server cannot
 * review access (the apply's own 403 then tells). Reads each object it may read, to know which it must create.
 */
export async function missingRights(
  objects: readonly KubeObject[],
  kube: KubeApi,
): Promise<MissingRights | undefined> {
  const known = objects.filter((o) => RESOURCES[o.kind] !== undefined);
  const reads = await Promise.all(known.map((o) => kube.canI(check(o, 'get')!)));
  const patches = await Promise.all(known.map((o) => kube.canI(check(o, 'patch')!)));
  if ([...reads, ...patches].some((a) => a === undefined)) return undefined;
  const missing: AccessCheck[] = [];
  // A binding to a ClusterRole also needs `bind` on that role (podgate does not hold what it grants).
  for (const c of bindChecks(known)) if ((await kube.canI(c)) === false) missing.push(c);
  for (const [i, o] of known.entries()) {
    if (!reads[i]) missing.push(check(o, 'get')!);
    if (!patches[i]) missing.push(check(o, 'patch')!);
    // Server-side apply creates what is absent, which needs `create` as well.
    if (reads[i] && (await kube.get(refOf(o)).catch(() => null)) === undefined) {
      if ((await kube.canI(check(o, 'create')!)) === false) missing.push(check(o, 'create')!);
    }
  }
  if (missing.length === 0) return undefined;
  return { missing, user: await kube.whoAmI() };
}
