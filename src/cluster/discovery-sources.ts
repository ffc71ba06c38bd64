/**
 * Pure readers of the cluster objects that reveal the pod and service networks. Each takes the
 * object as the API server returns it and gives back CIDRs (unvalidated text), or nothing.
 */
import { parse as parseYaml } from 'yaml';
import { parseCidr } from '../lib/cidr.js';
import type { KubeObject } from './kube-api.js';

/** A set of CIDRs and the object they were read from, e.g. "kubeadm-config networking.podSubnet". */
export interface CidrSource {
  source: string;
  cidrs: string[];
}

const split = (text: string, sep: RegExp) =>
  text
    .split(sep)
    .map((s) => s.trim())
    .filter((s) => s !== '');

const data = (obj: KubeObject | undefined): Record<string, string> =>
  (obj?.data ?? {}) as Record<string, string>;

export interface KubeadmNetworking {
  podSubnet: string[];
  serviceSubnet: string[];
  dnsDomain?: string;
}

/** kube-system/kubeadm-config: `ClusterConfiguration.networking` (comma-separated for dual stack). */
export function readKubeadmConfig(cm: KubeObject | undefined): KubeadmNetworking | undefined {
  const text = data(cm).ClusterConfiguration;
  if (!text) return undefined;
  const doc = parseYaml(text) as {
    networking?: { podSubnet?: string; serviceSubnet?: string; dnsDomain?: string };
  } | null;
  const net = doc?.networking ?? {};
  return {
    podSubnet: split(net.podSubnet ?? '', /,/),
    serviceSubnet: split(net.serviceSubnet ?? '', /,/),
    dnsDomain: net.dnsDomain || undefined,
  };
}

/** kube-flannel-cfg `net-conf.json`: Network, plus IPv6Network when EnableIPv6. */
export function readFlannelConfig(cm: KubeObject | undefined): string[] {
  const text = data(cm)['net-conf.json'];
  if (!text) return [];
  const conf = JSON.parse(text) as {
    Network?: string;
    EnableIPv6?: boolean;
    IPv6Network?: string;
    EnableIPv4?: boolean;
  };
  const out: string[] = [];
  if (conf.Network && conf.EnableIPv4 !== false) out.push(conf.Network);
  if (conf.EnableIPv6 && conf.IPv6Network) out.push(conf.IPv6Network);
  return out;
}

/** Calico IPPools (crd.projectcalico.org/v1 or projectcalico.org/v3): `spec.cidr` of the enabled pools. */
export function readCalicoPools(pools: readonly KubeObject[]): string[] {
  return pools
    .map((p) => p.spec as { cidr?: string; disabled?: boolean } | undefined)
    .filter((s) => s?.cidr && !s.disabled)
    .map((s) => s!.cidr!);
}

/**
 * cilium-config in cluster-pool IPAM mode (the default): `cluster-pool-ipv4-cidr` (space-separated when
 * the Helm list has several), and the IPv6 list when IPv6 is enabled. Other IPAM modes say nothing here.
 */
export function readCiliumConfig(cm: KubeObject | undefined): string[] {
  const d = data(cm);
  if (!cm || (d.ipam && d.ipam !== 'cluster-pool')) return [];
  const out: string[] = [];
  if (d['enable-ipv4'] !== 'false') out.push(...split(d['cluster-pool-ipv4-cidr'] ?? '', /[\s,]+/));
  if (d['enable-ipv6'] === 'true') out.push(...split(d['cluster-pool-ipv6-cidr'] ?? '', /[\s,]+/));
  return out;
}

/** `spec.podCIDRs` (or the older `spec.podCIDR`) of every node: the per-node slices. */
export function readNodePodCidrs(nodes: readonly KubeObject[]): string[] {
  const out = new Set<string>();
  for (const n of nodes) {
    const spec = (n.spec ?? {}) as { podCIDR?: string; podCIDRs?: string[] };
    for (const c of spec.podCIDRs ?? (spec.podCIDR ? [spec.podCIDR] : [])) out.add(c);
  }
  return [...out];
}

/** InternalIP addresses of every node, IPv4 first (the addresses clients dial). */
export function readNodeInternalIps(nodes: readonly KubeObject[]): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const n of nodes) {
    const addresses =
      ((n.status ?? {}) as { addresses?: { type: string; address: string }[] }).addresses ?? [];
    for (const a of addresses) {
      if (a.type !== 'InternalIP') continue;
      (a.address.includes(':') ? v6 : v4).push(a.address);
    }
  }
  return [...new Set([...v4, ...v6])];
}

export interface K3sNetworking {
  distribution: 'k3s' | 'rke2';
  /** Where the values come from: the node-args annotation or the distribution's documented defaults. */
  origin: string;
  clusterCidr: string[];
  serviceCidr: string[];
  clusterDomain?: string;
}

/** The defaults k3s and rke2 use when --cluster-cidr / --service-cidr are not given. */
const K3S_DEFAULTS = { clusterCidr: ['10.42.0.0/16'], serviceCidr: ['10.43.0.0/16'] };

/**
 * k3s and rke2 servers label nodes (`node.kubernetes.io/instance-type=k3s`, providerID `k3s://`, or
 * `rke2.io/*` annotations) and record their arguments in `k3s.io/node-args` / `rke2.io/node-args`.
 * Arguments win; otherwise the defaults 10.42.0.0/16 and 10.43.0.0/16 apply.
 */
export function readK3sNode(nodes: readonly KubeObject[]): K3sNetworking | undefined {
  for (const n of nodes) {
    const labels = n.metadata.labels ?? {};
    const ann = n.metadata.annotations ?? {};
    const provider = String((n.spec as { providerID?: string } | undefined)?.providerID ?? '');
    const rke2 =
      Object.keys(ann).some((k) => k.startsWith('rke2.io/')) ||
      labels['node.kubernetes.io/instance-type'] === 'rke2';
    const k3s =
      !rke2 &&
      (labels['node.kubernetes.io/instance-type'] === 'k3s' ||
        provider.startsWith('k3s://') ||
        'k3s.io/node-args' in ann);
    if (!rke2 && !k3s) continue;
    const distribution = rke2 ? 'rke2' : 'k3s';
    const argsText = ann[`${distribution}.io/node-args`];
    let args: string[] = [];
    try {
      args = argsText ? (JSON.parse(argsText) as string[]) : [];
    } catch {
      args = [];
    }
    const flag = (name: string) => {
      const values: string[] = [];
      args.forEach((a, i) => {
        if (a === `--${name}` && args[i + 1] !== undefined) values.push(args[i + 1]!);
        else if (a.startsWith(`--${name}=`)) values.push(a.slice(name.length + 3));
      });
      return values.flatMap((v) => split(v, /,/));
    };
    const cc = flag('cluster-cidr');
    const sc = flag('service-cidr');
    const domain = flag('cluster-domain')[0];
    // Only server nodes carry the network flags; an agent-only node still tells us the defaults apply.
    if (!argsText || args[0] === 'server' || cc.length > 0 || sc.length > 0) {
      return {
        distribution,
        origin:
          cc.length || sc.length
            ? `${distribution}.io/node-args on node ${n.metadata.name}`
            : `${distribution} defaults (node ${n.metadata.name})`,
        clusterCidr: cc.length ? cc : K3S_DEFAULTS.clusterCidr,
        serviceCidr: sc.length ? sc : K3S_DEFAULTS.serviceCidr,
        clusterDomain: domain,
      };
    }
  }
  return undefined;
}

/** ServiceCIDR objects (networking.k8s.io v1 or v1beta1): every `spec.cidrs`, in order, without repeats. */
export function readServiceCidrObjects(items: readonly KubeObject[]): string[] {
  const out = new Set<string>();
  for (const item of items)
    for (const c of ((item.spec ?? {}) as { cidrs?: string[] }).cidrs ?? []) out.add(c);
  return [...out];
}

/**
 * The valid range named in an out-of-range clusterIP error. Matches every version's wording
 * ("provided IP is not in the valid range. The range of valid IPs is X" and "the provided IP (ip) is
 * not in the valid range. The range of valid IPs is X"), whether the rejected value is rendered as
 * `[]string{"ip"}` (≤1.33) or `["ip"]` (≥1.34). Returns undefined for the multi-CIDR allocator's
 * "does not match the current range", which names no range.
 */
export function parseServiceRangeError(message: string): string | undefined {
  const m = /The range of valid IPs is ([0-9A-Fa-f.:]+\/\d{1,3})/.exec(message);
  if (m) return m[1];
  // Not the English phrase (another release or a proxy rewording it): the one CIDR the message names.
  const candidates = message.match(/[0-9A-Fa-f.:]+\/\d{1,3}/g) ?? [];
  const cidrs = [...new Set(candidates.filter(isCidr))];
  return cidrs.length === 1 ? cidrs[0] : undefined;
}

function isCidr(text: string): boolean {
  try {
    parseCidr('probe', text);
    return true;
  } catch {
    return false;
  }
}
