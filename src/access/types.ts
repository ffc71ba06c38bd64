/**
 * Access rules: who (subjects) may reach what (destinations, in Kubernetes terms), and the bundle the
 * manager publishes to every enforcement point (the agent beside each openvpn server).
 *
 * Division of work:
 * - the manager owns identity: it resolves subjects (users, local and single sign-on groups, gateways,
 *   everyone) to the stable tunnel addresses of the devices they hold, and publishes an `AccessBundle`
 *   (Secret `podgate-access` in cluster mode, `<dataDir>/server/access.json` in local mode);
 * - the agent owns destinations: it resolves namespaces, Services and pod selectors to addresses from the
 *   live cluster it watches, and keeps an nftables table in step, element by element.
 * Rules themselves are plain data; the compilers (`compile-*.ts`) are pure functions of rules + objects.
 */

export type AccessMode = 'open' | 'enforce';

/** Kubernetes label selector (the subset of metav1.LabelSelector podgate accepts). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

export type Subject =
  | { kind: 'user'; name: string }
  | { kind: 'group'; name: string }
  | { kind: 'gateway'; name: string }
  | { kind: 'everyone' };

export type Destination =
  /** Every pod and Service in the named namespaces, or in namespaces whose labels match. */
  | { kind: 'namespace'; names?: string[]; selector?: LabelSelector }
  /** Services (ClusterIP and their ports, and the pods behind them) by `ns/name` or by selector in a namespace. */
  | { kind: 'service'; namespace: string; name?: string; selector?: LabelSelector }
  /** Pods in a namespace whose labels match. */
  | { kind: 'pod'; namespace: string; selector: LabelSelector }
  /** A plain range, for what lies outside the cluster. */
  | { kind: 'cidr'; cidr: string };

export type AccessProtocol = 'tcp' | 'udp' | 'icmp' | 'any';

export interface PortRange {
  from: number;
  to: number;
}

export interface AccessRule {
  /** Unique; the name rule of podgate (`^[a-z0-9][a-z0-9._-]{0,63}$`). */
  name: string;
  description?: string;
  subjects: Subject[];
  destinations: Destination[];
  /** Default `any`. */
  protocol?: AccessProtocol;
  /** Only with tcp/udp; absent = every port. */
  ports?: PortRange[];
}

/** One device allowed to connect: openvpn gets its fixed tunnel address at connect. */
export interface AccessClient {
  commonName: string;
  /** Stable tunnel address (IPv4 dotted quad) from the client subnet. */
  address: string;
}

/** A rule as an enforcement point sees it: subjects already resolved to tunnel addresses. */
export interface ResolvedRule {
  name: string;
  clients: string[];
  destinations: Destination[];
  protocol: AccessProtocol;
  ports: PortRange[];
}

/** What the manager publishes after any change to rules, groups, users, devices or addresses. */
export interface AccessBundle {
  /** Rises with every publication (stored); an agent never goes back to a lower version. */
  version: number;
  mode: AccessMode;
  /** Devices that may connect (owner enabled, certificate valid); everyone else is refused at connect. */
  clients: AccessClient[];
  rules: ResolvedRule[];
  generatedAt: string; // ISO-8601
}

/**
 * The live cluster objects destinations are resolved against, as the agent's watch keeps them
 * (`cluster/access-watch.ts` produces them; `compile-*.ts` consumes them). Addresses are strings as the
 * API server reports them; IPv6 ones are kept so dual-stack rules can follow.
 */
export interface NamespaceObject {
  name: string;
  labels: Record<string, string>;
}

export interface PodObject {
  /** metadata.uid: pod names and addresses are reused, uids are not. */
  uid: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /**
   * status.podIPs; empty until the pod has an address, for hostNetwork pods (never matched), and once
   * the pod has Succeeded or Failed (its sandbox is gone and the address may already be another pod's).
   */
  ips: string[];
  /** The containers' declared ports, for Services whose targetPort names one (absent = none known). */
  containerPorts?: ContainerPort[];
}

export interface ContainerPort {
  name?: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  port: number;
}

export interface ServicePort {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  /**
   * spec.ports[].targetPort: the pods' port behind `port` (a number, or a container port's name that
   * each pod resolves through its `containerPorts`). Absent when the Service does not say (= `port`).
   */
  targetPort?: number | string;
}

export interface ServiceObject {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** spec.clusterIPs without "None" (headless Services have none). */
  clusterIPs: string[];
  ports: ServicePort[];
  /** spec.selector; the pods behind the Service are also reachable on the Service's target ports. */
  selector: Record<string, string> | null;
}

export type ClusterEvent =
  | { type: 'upsert'; kind: 'namespace'; object: NamespaceObject }
  | { type: 'delete'; kind: 'namespace'; name: string }
  | { type: 'upsert'; kind: 'pod'; object: PodObject }
  | { type: 'delete'; kind: 'pod'; uid: string }
  | { type: 'upsert'; kind: 'service'; object: ServiceObject }
  | { type: 'delete'; kind: 'service'; namespace: string; name: string }
  /** A full re-list finished (after start, a 410 or a reconnect): objects not seen since `resync-start` are gone. */
  | { type: 'resync-start' }
  | { type: 'resync-done' };

/** A source of cluster events; `stop()` ends the watches. */
export interface ClusterObjectSource {
  start(onEvent: (e: ClusterEvent) => void): void;
  stop(): Promise<void>;
}
