/**
 * The files the node's components read: containerd's config, the kubelet's and kube-proxy's component
 * configs and the CNI network list. Pure functions of the node's layout, so they can be read in one place.
 *
 * What the kubelet of this release needed on these machines (cgroup v1 hybrid, kernel 6.18, no systemd):
 * `cgroupDriver: cgroupfs` (no systemd to delegate to) with its own `cgroupRoot` so that `down` finds every
 * pod cgroup; `failSwapOn: false`; eviction thresholds low enough for a shared build machine; and, for the
 * OpenVPN pod, `allowedUnsafeSysctls: [net.ipv4.ip_forward]` (see k8s/README.md "Running on a real node").
 */
import { join } from 'node:path';

export interface NodeLayout {
  /** Everything of one node lives under here; `down` removes it. */
  runDir: string;
  nodeName: string;
  nodeIp: string;
  podCidr: string;
  clusterCidr: string;
  clusterDns: string;
  clusterDomain: string;
  sandboxImage: string;
  /** cgroup parent of every pod, under each v1 controller (e.g. /sys/fs/cgroup/memory/<this>). */
  cgroupRoot: string;
}

export const dirs = (l: NodeLayout) => ({
  containerdRoot: join(l.runDir, 'containerd', 'root'),
  containerdState: join(l.runDir, 'containerd', 'state'),
  containerdSock: join(l.runDir, 'containerd', 'containerd.sock'),
  cniConf: join(l.runDir, 'cni', 'net.d'),
  cniIpam: join(l.runDir, 'cni', 'ipam'),
  kubeletRoot: join(l.runDir, 'kubelet'),
  kubeletCerts: join(l.runDir, 'kubelet-pki'),
  logs: join(l.runDir, 'logs'),
  resolvConf: join(l.runDir, 'resolv.conf'),
});

export function containerdConfig(l: NodeLayout): string {
  const d = dirs(l);
  return `version = 2
root = ${JSON.stringify(d.containerdRoot)}
state = ${JSON.stringify(d.containerdState)}
[grpc]
  address = ${JSON.stringify(d.containerdSock)}
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${JSON.stringify(l.sandboxImage)}
  # pod network namespaces under the state dir instead of /run/netns: down unmounts them with the rest
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  # these machines refuse a lower oom_score_adj than the caller's, even to root: the kubelet asks -998 for
  # sandboxes, so clamp to containerd's own
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${JSON.stringify(d.cniConf)}
`;
}

/** bridge + host-local from the node's podCIDR, portmap for hostPorts; containerd calls loopback itself. */
export function cniConfList(l: NodeLayout): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: 'podgate-test',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: dirs(l).cniIpam,
            ranges: [[{ subnet: l.podCidr }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    },
    null,
    2,
  );
}

export function kubeletConfig(l: NodeLayout): string {
  const d = dirs(l);
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: l.nodeIp,
      port: 10250,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10248,
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true } },
      authorization: { mode: 'Webhook' },
      cgroupDriver: 'cgroupfs',
      cgroupRoot: l.cgroupRoot,
      cgroupsPerQOS: true,
      enforceNodeAllocatable: ['pods'],
      failSwapOn: false,
      failCgroupV1: false,
      clusterDNS: [l.clusterDns],
      clusterDomain: l.clusterDomain,
      containerRuntimeEndpoint: `unix://${d.containerdSock}`,
      resolvConf: d.resolvConf,
      rotateCertificates: false,
      serverTLSBootstrap: false,
      volumePluginDir: join(d.kubeletRoot, 'volume-plugins'),
      podLogsDir: join(l.runDir, 'pod-logs'),
      // a shared build machine: never evict the test's pods for a full-ish disk or busy memory
      evictionHard: { 'memory.available': '50Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      // the OpenVPN server pod routes for its clients (see k8s/README.md)
      allowedUnsafeSysctls: ['net.ipv4.ip_forward'],
      syncFrequency: '10s',
      fileCheckFrequency: '10s',
      nodeStatusReportFrequency: '10s',
      registerNode: true,
      maxPods: 50,
      serializeImagePulls: false,
    },
    null,
    2,
  );
}

export function kubeProxyConfig(l: NodeLayout, kubeconfig: string): string {
  return JSON.stringify(
    {
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      mode: 'iptables',
      clientConnection: { kubeconfig },
      hostnameOverride: l.nodeName,
      bindAddress: l.nodeIp,
      healthzBindAddress: '127.0.0.1:10256',
      metricsBindAddress: '127.0.0.1:10249',
      clusterCIDR: l.clusterCidr,
      nodePortAddresses: [`${l.nodeIp}/32`],
      // nf_conntrack_max and the TCP timeouts are machine-wide or read-only outside the first namespace:
      // leave them as they are
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      iptables: { masqueradeAll: false, syncPeriod: '10s', minSyncPeriod: '0s' },
    },
    null,
    2,
  );
}
