import type { Config, VpnConfig } from '../config/schema.js';
import type { SettingsStore } from '../store/types.js';

/** What `k8s discover` stored (settings key `cluster.discovery`); only the fields the VPN needs. */
export interface StoredDiscovery {
  podCidrs?: string[];
  serviceCidrs?: string[];
  dnsServer?: string;
  clusterDomain?: string;
  nodeIps?: string[];
}

export const DISCOVERY_SETTING = 'cluster.discovery';

/** The network the VPN serves: config values win; discovery fills what config leaves empty. */
export interface EffectiveNetwork {
  endpoints: string[];
  podCidrs: string[];
  serviceCidrs: string[];
  extraRoutes: string[];
  dnsServers: string[];
  dnsDomain: string;
  searchDomains: string[];
}

async function readDiscovery(settings: SettingsStore): Promise<StoredDiscovery> {
  const raw = await settings.getSetting(DISCOVERY_SETTING);
  if (!raw) return {};
  try {
    return JSON.parse(raw) as StoredDiscovery;
  } catch {
    return {};
  }
}

export async function effectiveNetwork(config: Config, settings: SettingsStore): Promise<EffectiveNetwork> {
  const d = await readDiscovery(settings);
  const pick = (configured: string[], discovered: string[] | undefined) =>
    configured.length > 0 ? configured : (discovered ?? []);
  return {
    endpoints: pick(config.vpn.endpoints, d.nodeIps),
    podCidrs: pick(config.vpn.routes.pods, d.podCidrs),
    serviceCidrs: pick(config.vpn.routes.services, d.serviceCidrs),
    extraRoutes: config.vpn.routes.extra,
    dnsServers: pick(config.vpn.dns.servers, d.dnsServer ? [d.dnsServer] : []),
    dnsDomain:
      config.vpn.dns.domain !== 'cluster.local'
        ? config.vpn.dns.domain
        : (d.clusterDomain ?? 'cluster.local'),
    searchDomains: config.vpn.dns.searchDomains,
  };
}

/** The server pushes IPv4 routes only (`push "route"`); IPv6 ranges of dual-stack clusters are left out. */
export function ipv4Only(cidrs: readonly string[]): string[] {
  return cidrs.filter((c) => !c.includes(':'));
}

/** The vpn config with the effective (configured or discovered) routes, DNS and endpoints filled in. */
export function vpnWithNetwork(
  vpn: VpnConfig,
  network: Omit<EffectiveNetwork, 'endpoints'> & { endpoints?: string[] },
): VpnConfig {
  return {
    ...vpn,
    endpoints: network.endpoints ?? vpn.endpoints,
    routes: {
      pods: ipv4Only(network.podCidrs),
      services: ipv4Only(network.serviceCidrs),
      extra: network.extraRoutes,
    },
    dns: { servers: network.dnsServers, domain: network.dnsDomain, searchDomains: network.searchDomains },
  };
}
