/**
 * Builders of every Kubernetes object the OpenVPN server needs: pure functions of the config, the
 * server material and the revocation bundle (no I/O, no clock, no randomness), so `k8s manifests`
 * and `k8s deploy` produce the same objects and a re-deploy of the same inputs changes nothing.
 */
import { crlKeyIds, markOwner } from './ownership.js';
import { createHash } from 'node:crypto';
import type { AccessMode } from '../access/types.js';
import type { Config } from '../config/schema.js';
import { vpnWithNetwork, type EffectiveNetwork } from '../services/network.js';
import type { RevocationBundle } from '../openvpn/revocation-bundle.js';
import { renderServerConfig } from '../profiles/server-config.js';
import { CRL_SECRET_LIMIT_BYTES, crlSecret } from './crl-secret.js';
import { yamlLib } from '../lib/yaml.js';
import type { KubeObject } from './kube-api.js';
import { buildDeployment } from './manifests-deployment.js';
import { forTunnel } from '../lib/tunnel-subnets.js';
import { agentAccessBindingObject, agentRole, serverNamespace } from './manager-rbac.js';
import { LABELS, OBJECT_NAMES, POD_FILES, POD_PATHS } from './pod-layout.js';

/** The server's certificate and keys, as ServerIdentityService.ensure() returns them. */
export interface ServerMaterial {
  caCertPem: string;
  certPem: string;
  keyPem: string;
  tlsCryptV2ServerKeyPem: string;
  tlsCryptKeyPem: string;
}

/** What the server pushes: config values win, discovery fills the rest (services/network.ts). */
export type ServerNetwork = Omit<EffectiveNetwork, 'endpoints'>;

export interface ManifestInput {
  config: Config;
  server: ServerMaterial;
  bundle: RevocationBundle;
  network: ServerNetwork;
  /** templates/server.conf.hbs (the caller loads it; builders do no I/O). */
  serverConfTemplate: string;
  /** The access mode in force (config or data dir); default: what config says, else `open`. */
  accessMode?: AccessMode;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The management password: derived from the server key so that it is secret, stable across
 * deploys (no spurious rollouts) and never stored anywhere but the Secret.
 */
export function managementPassword(server: ServerMaterial): string {
  return createHash('sha256')
    .update('podgate management\0')
    .update(server.keyPem)
    .digest('base64url')
    .slice(0, 32);
}

/**
 * server.conf with paths pointing into the pod's mounts. In `enforce` openvpn reads the client-config-dir
 * the agent keeps, with `ccd-exclusive`: a device the access bundle does not list is refused at connect.
 * With several replicas it reads it in `open` too (without `ccd-exclusive`), so that a device has the
 * same tunnel address whichever replica it lands on.
 */
export function renderPodServerConfig(input: ManifestInput): string {
  const { config, network } = input;
  const enforce = (input.accessMode ?? accessModeOf(config)) === 'enforce';
  const v2 = config.vpn.controlChannel === 'tls-crypt-v2';
  return renderServerConfig({
    template: input.serverConfTemplate,
    vpn: vpnWithNetwork(config.vpn, network),
    crlFile: POD_FILES.crl,
    managementSocket: POD_FILES.managementSocket,
    managementPasswordFile: POD_FILES.managementPassword,
    // Several replicas: the agent's files pin each device's address on every one of them (open mode too).
    clientConfigDir: enforce || config.vpn.replicas > 1 ? POD_PATHS.ccdDir : undefined,
    clientConfigExclusive: enforce,
    files: {
      ca: POD_FILES.ca,
      cert: POD_FILES.cert,
      key: POD_FILES.key,
      ...(v2 ? { tlsCryptV2: POD_FILES.tlsCryptV2 } : { tlsCrypt: POD_FILES.tlsCrypt }),
    },
  });
}

/** access.mode from config when the caller has no mode in force to give (`open` when config is silent). */
export function accessModeOf(config: Config): AccessMode {
  return config.access.mode ?? 'open';
}

const fileName = (path: string) => path.slice(path.lastIndexOf('/') + 1);

function meta(name: string, namespace: string, extra: Record<string, unknown> = {}) {
  return { name, namespace, labels: { ...LABELS }, ...extra };
}

/** Every object, in the order they must be applied (namespace first, workload last). */
export function buildManifests(input: ManifestInput): KubeObject[] {
  const { config, server, bundle } = input;
  const ns = config.kubernetes.namespace;
  const serverConf = renderPodServerConfig(input);
  const serverData: Record<string, string> = {
    [fileName(POD_FILES.ca)]: b64(server.caCertPem),
    [fileName(POD_FILES.cert)]: b64(server.certPem),
    [fileName(POD_FILES.key)]: b64(server.keyPem),
    [fileName(POD_FILES.managementPassword)]: b64(`${managementPassword(server)}\n`),
    [config.vpn.controlChannel === 'tls-crypt-v2'
      ? fileName(POD_FILES.tlsCryptV2)
      : fileName(POD_FILES.tlsCrypt)]: b64(
      config.vpn.controlChannel === 'tls-crypt-v2' ? server.tlsCryptV2ServerKeyPem : server.tlsCryptKeyPem,
    ),
  };
  // The CRL is not part of the checksum: revocations reach the running pod through the agent, no restart.
  const checksum = sha256(JSON.stringify({ serverConf, serverData, image: config.kubernetes.image }));

  // deploy refuses a namespace that already enforces a stricter PodSecurity level instead of overriding it.
  const namespace = serverNamespace(ns);
  const serverSecret: KubeObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(OBJECT_NAMES.serverSecret, ns),
    type: 'Opaque',
    data: serverData,
  };
  const crl = crlSecret(ns, bundle);
  const configMap: KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(OBJECT_NAMES.app, ns),
    data: { 'server.conf': serverConf },
  };
  // No `data`: the agent owns the keys it patches in; a re-apply must not take them away.
  const status: KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(OBJECT_NAMES.agentStatus, ns),
  };
  const serviceAccount: KubeObject = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: meta(OBJECT_NAMES.agent, ns),
  };
  const role = agentRole(ns);
  const roleBinding: KubeObject = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(OBJECT_NAMES.agent, ns),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: OBJECT_NAMES.agent },
    subjects: [{ kind: 'ServiceAccount', name: OBJECT_NAMES.agent, namespace: ns }],
  };
  const proto = config.vpn.proto === 'udp' ? 'UDP' : 'TCP';
  const service: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(OBJECT_NAMES.app, ns),
    spec: {
      type: 'NodePort',
      selector: { ...LABELS },
      ports: [
        {
          name: 'openvpn',
          protocol: proto,
          port: config.vpn.port,
          targetPort: config.vpn.port,
          nodePort: config.kubernetes.nodePort,
        },
      ],
    },
  };
  const deployment = buildDeployment({
    config,
    namespace: ns,
    checksum,
    proto,
    access: {
      mode: input.accessMode ?? accessModeOf(config),
      dnsServers: forTunnel(config.vpn, input.network.dnsServers),
      tun: config.access.tunInterface,
    },
  });
  // Owned by the issuing CA (ownership.ts): another manager's deploy refuses to replace them.
  const owner = crlKeyIds(bundle.crlPem)[0];
  for (const o of [serverSecret, configMap, deployment]) markOwner(o, owner);
  return [
    namespace,
    serviceAccount,
    role,
    roleBinding,
    agentAccessBindingObject(ns),
    serverSecret,
    crl,
    configMap,
    status,
    service,
    disruptionBudget(ns, config.vpn.replicas),
    deployment,
  ];
}

/**
 * The server pods' PodDisruptionBudget. With 2+ replicas a drain (or any eviction) keeps one serving
 * (`minAvailable: 1`). With one replica it allows the eviction (`maxUnavailable: 1`): a budget that
 * could never be met would block every node drain, and it is always emitted so that going from 2
 * replicas back to 1 updates it instead of leaving a blocking one behind.
 */
export function disruptionBudget(namespace: string, replicas: number): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(OBJECT_NAMES.app, namespace),
    spec: {
      ...(replicas > 1 ? { minAvailable: 1 } : { maxUnavailable: 1 }),
      selector: { matchLabels: { ...LABELS } },
    },
  };
}

// The podgate-crl Secret lives in crl-secret.ts: a revocation builds it without loading the manifests.
export { CRL_SECRET_LIMIT_BYTES, crlSecret };

/** One YAML document per object, named for `kubectl apply -f DIR` (which applies files in name order). */
export function manifestFiles(objects: readonly KubeObject[]): { name: string; yaml: string }[] {
  return objects.map((o, i) => ({
    name: `${String(i).padStart(2, '0')}-${o.kind.toLowerCase()}-${o.metadata.name}.yaml`,
    yaml: yamlLib().stringify(o, { lineWidth: 0 }),
  }));
}
