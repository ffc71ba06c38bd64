import type { Config, VpnConfig } from '../config/schema.js';
import type { SettingsStore } from '../store/types.js';
import { forTunnel } from '../lib/tunnel-subnets.js';

/** What `k8s discover` stored (settings key `cluster.discovery`); only the fields the VPN needs. */
export interface StoredDiscovery {
  podCidrs?: string[];
  serviceCidrs?: string[];
  dnsServer?: string;
  dnsServer6?: string;
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
    dnsServers: pick(
      config.vpn.dns.servers,
      [d.dnsServer, d.dnsServer6].filter((s): s is string => s !== undefined),
    ),
    dnsDomain:
      config.vpn.dns.domain !== 'cluster.local'
        ? config.vpn.dns.domain
        : (d.clusterDomain ?? 'cluster.local'),
    searchDomains: config.vpn.dns.searchDomains,
  };
}

/**
 * The vpn config with the effective (configured or discovered) routes, DNS and endpoints filled in.
 * IPv6 ranges and DNS addresses of a dual-stack cluster are kept only with vpn.clientSubnet6: a client
 * without an IPv6 tunnel address cannot use them.
 */
export function vpnWithNetwork(
  vpn: VpnConfig,
  network: Omit<EffectiveNetwork, 'endpoints'> & { endpoints?: string[] },
): VpnConfig {
  return {
    ...vpn,
    endpoints: network.endpoints ?? vpn.endpoints,
    routes: {
      pods: forTunnel(vpn, network.podCidrs),
      services: forTunnel(vpn, network.serviceCidrs),
      extra: network.extraRoutes,
    },
    dns: {
      servers: forTunnel(vpn, network.dnsServers),
      domain: network.dnsDomain,
      searchDomains: network.searchDomains,
    },
  };
}
