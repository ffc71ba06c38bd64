/**
 * The rights the manager (whoever runs `podgate k8s deploy`: the in-cluster `podgate-manager`
 * ServiceAccount, or a kubeconfig) needs in the OpenVPN server's namespace, as objects an admin applies:
 * `podgate k8s rbac --namespace NS | kubectl apply -f -`, and `k8s/rbac-middleware.yaml` for the
 * default namespace (a test keeps that file equal to this builder's output).
 *
 * Why an admin applies them instead of podgate creating its namespace: a Role only grants inside its own
 * namespace, so it cannot exist before the namespace, and it goes when the namespace is deleted. Rights
 * that survive that would have to be cluster-wide (a ClusterRoleBinding), and creating a Deployment in any
 * namespace is as strong as cluster-admin (a pod in kube-system can run as any of its ServiceAccounts).
 * So podgate holds rights only in namespaces an admin gave it, each restricted by name to podgate's
 * own objects (server-side apply names the object even when it creates it, so `create` can be
 * restricted by resourceNames too).
 */
import type { KubeObject } from './kube-api.js';
import {
  agentAccessBinding,
  LABELS,
  OBJECT_NAMES,
  POD_SECURITY_ENFORCE,
  POD_SECURITY_LEVEL,
} from './pod-layout.js';

/** The ServiceAccount the k8s/ base runs the manager as. */
export const MANAGER_SERVICE_ACCOUNT = { namespace: 'podgate', name: 'podgate-manager' } as const;

/** Name of the manager's Role and RoleBinding inside the server's namespace. */
export const MANAGER_ROLE = 'podgate-manager';

export interface Subject {
  namespace: string;
  name: string;
}

const RBAC = 'rbac.authorization.k8s.io';
/** What deploy does to each of podgate's objects: read it, server-side apply it (patch, create when absent). */
const APPLY = (): string[] => ['get', 'create', 'patch'];

/**
 * The server's namespace, labelled so PodSecurity admits the OpenVPN pod (NET_ADMIN, NET_RAW, MKNOD and
 * the ip_forward sysctl are outside "baseline").
 */
export function serverNamespace(namespace: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespace, labels: { ...LABELS, [POD_SECURITY_ENFORCE]: POD_SECURITY_LEVEL } },
  };
}

/** The Role deploy creates for the agent sidecar (the manager must hold all of it: RBAC escalation check). */
export function agentRole(namespace: string): KubeObject {
  return {
    apiVersion: `${RBAC}/v1`,
    kind: 'Role',
    metadata: { name: OBJECT_NAMES.agent, namespace, labels: { ...LABELS } },
    rules: [
      // list/watch with resourceNames are authorised when the request selects metadata.name, as the agent does.
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: [OBJECT_NAMES.crlSecret, OBJECT_NAMES.accessSecret],
        verbs: ['get', 'list', 'watch'],
      },
      {
        apiGroups: [''],
        resources: ['configmaps'],
        resourceNames: [OBJECT_NAMES.agentStatus],
        verbs: ['get', 'patch'],
      },
      // Its replica's Lease (replica-status.ts), named after its pod, which RBAC cannot name in advance;
      // Leases grant nothing any pod reads (server.conf is a ConfigMap), so the unnamed grant stays small.
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'patch'] },
    ],
  };
}

/**
 * What the agent's access watch reads, cluster-wide and read-only: Namespaces, Pods and Services (their
 * labels and addresses; see access-watch.ts for why not EndpointSlices). An admin applies this role
 * (k8s/rbac-middleware.yaml, `podgate k8s rbac`); deploy binds it to the agent (`agentAccessBindingObject`)
 * with `bind` on this one name, so the manager never holds these reads itself and cannot change the role.
 */
export function agentAccessClusterRole(): KubeObject {
  return {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRole',
    metadata: { name: OBJECT_NAMES.agentAccessRole, labels: { ...LABELS } },
    rules: [
      { apiGroups: [''], resources: ['namespaces', 'pods', 'services'], verbs: ['get', 'list', 'watch'] },
    ],
  };
}

/** The ClusterRoleBinding deploy applies: the agent of the server in `namespace` gets the access reads. */
export function agentAccessBindingObject(namespace: string): KubeObject {
  return {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name: agentAccessBinding(namespace), labels: { ...LABELS } },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: OBJECT_NAMES.agentAccessRole },
    subjects: [{ kind: 'ServiceAccount', name: OBJECT_NAMES.agent, namespace }],
  };
}

/** Rules of the manager's Role in the server's namespace: podgate's own objects, by name. */
function managerRules(): Record<string, unknown>[] {
  return [
    {
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: [OBJECT_NAMES.serverSecret, OBJECT_NAMES.crlSecret, OBJECT_NAMES.accessSecret],
      verbs: APPLY(),
    },
    // Only to hand them to the agent's Role (a Role may grant only what its author holds).
    {
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: [OBJECT_NAMES.crlSecret, OBJECT_NAMES.accessSecret],
      verbs: ['list', 'watch'],
    },
    {
      apiGroups: [''],
      resources: ['configmaps'],
      resourceNames: [OBJECT_NAMES.app, OBJECT_NAMES.agentStatus],
      verbs: APPLY(),
    },
    { apiGroups: [''], resources: ['serviceaccounts'], resourceNames: [OBJECT_NAMES.agent], verbs: APPLY() },
    { apiGroups: [''], resources: ['services'], resourceNames: [OBJECT_NAMES.app], verbs: APPLY() },
    { apiGroups: ['apps'], resources: ['deployments'], resourceNames: [OBJECT_NAMES.app], verbs: APPLY() },
    {
      apiGroups: ['policy'],
      resources: ['poddisruptionbudgets'],
      resourceNames: [OBJECT_NAMES.app],
      verbs: APPLY(),
    },
    // The replicas' Leases: read them all (status, sessions), patch one to ask for a disconnect; get and
    // create only because the agent's Role grants them (a Role may grant only what its author holds).
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'create', 'patch'] },
    {
      apiGroups: [RBAC],
      resources: ['roles', 'rolebindings'],
      resourceNames: [OBJECT_NAMES.agent],
      verbs: APPLY(),
    },
    // `k8s status` and the rollout check: the Service's endpoints, the server's pods (a label
    // selector, which resourceNames cannot express; the namespace holds podgate's pods only).
    { apiGroups: [''], resources: ['endpoints'], resourceNames: [OBJECT_NAMES.app], verbs: ['get'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
  ];
}

/**
 * The manager's rights for a server in `namespace`: a Role + RoleBinding there, and a ClusterRole +
 * ClusterRoleBinding to read and label that one namespace (deploy applies it; namespaces are
 * cluster-scoped, so a Role cannot grant that) and to bind the agent's access reads to the agent
 * (`bind` on that one ClusterRole, apply on that one ClusterRoleBinding), then the agent's access
 * ClusterRole itself. Nothing here lets podgate create or delete a namespace, or change a ClusterRole.
 */
export function managerRbac(namespace: string, subject: Subject = MANAGER_SERVICE_ACCOUNT): KubeObject[] {
  const subjects = [{ kind: 'ServiceAccount', name: subject.name, namespace: subject.namespace }];
  const labels = { 'app.kubernetes.io/name': 'podgate', 'app.kubernetes.io/component': 'manager' };
  const nsRole = `podgate-manager-namespace-${namespace}`;
  return [
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'Role',
      metadata: { name: MANAGER_ROLE, namespace, labels },
      rules: managerRules(),
    },
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'RoleBinding',
      metadata: { name: MANAGER_ROLE, namespace, labels },
      roleRef: { apiGroup: RBAC, kind: 'Role', name: MANAGER_ROLE },
      subjects,
    },
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'ClusterRole',
      metadata: { name: nsRole, labels },
      rules: [
        { apiGroups: [''], resources: ['namespaces'], resourceNames: [namespace], verbs: ['get', 'patch'] },
        // `bind` on the agent's read-only ClusterRole only: without it the manager would have to hold
        // every read it grants (RBAC escalation check); `escalate` would let it rewrite that role.
        {
          apiGroups: [RBAC],
          resources: ['clusterroles'],
          resourceNames: [OBJECT_NAMES.agentAccessRole],
          verbs: ['bind'],
        },
        {
          apiGroups: [RBAC],
          resources: ['clusterrolebindings'],
          resourceNames: [agentAccessBinding(namespace)],
          verbs: APPLY(),
        },
      ],
    },
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: { name: nsRole, labels },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: nsRole },
      subjects,
    },
    agentAccessClusterRole(),
  ];
}

/** `--service-account NS/NAME` → Subject; undefined when the text is not of that form. */
export function parseSubject(text: string): Subject | undefined {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(text);
  return m && m[1]!.length <= 63 && m[3]!.length <= 253 ? { namespace: m[1]!, name: m[3]! } : undefined;
}
