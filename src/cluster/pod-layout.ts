/**
 * Names and paths shared by the manifests (what the pod mounts where) and the agent (what it reads
 * and watches). One place, so the Deployment and `podgate agent --cluster` cannot drift apart.
 */
export const OBJECT_NAMES = {
  /** Secret: CA cert, server cert + key, control-channel key, management password. */
  serverSecret: 'podgate-server',
  /** Secret: crl.pem + revocations.json (the RevocationBundle JSON). */
  crlSecret: 'podgate-crl',
  /** Secret: access.json (the AccessBundle JSON: devices that may connect, resolved rules). */
  accessSecret: 'podgate-access',
  /** ConfigMap with server.conf; also the name of the Deployment and the Service. */
  app: 'podgate-openvpn',
  /** ServiceAccount, Role and RoleBinding of the agent sidecar. */
  agent: 'podgate-agent',
  /** ConfigMap the agent patches with the last CRL number it applied. */
  agentStatus: 'podgate-agent-status',
} as const;

export const POD_PATHS = {
  serverDir: '/etc/podgate/server',
  configDir: '/etc/podgate/config',
  crlSeedDir: '/etc/podgate/crl-seed',
  crlDir: '/run/podgate/crl',
  mgmtDir: '/run/podgate/mgmt',
} as const;

export const POD_FILES = {
  ca: `${POD_PATHS.serverDir}/ca.crt`,
  cert: `${POD_PATHS.serverDir}/server.crt`,
  key: `${POD_PATHS.serverDir}/server.key`,
  tlsCryptV2: `${POD_PATHS.serverDir}/tls-crypt-v2-server.key`,
  tlsCrypt: `${POD_PATHS.serverDir}/tls-crypt.key`,
  managementPassword: `${POD_PATHS.serverDir}/management.pwd`,
  serverConf: `${POD_PATHS.configDir}/server.conf`,
  crl: `${POD_PATHS.crlDir}/crl.pem`,
  managementSocket: `${POD_PATHS.mgmtDir}/openvpn.sock`,
} as const;

/** Keys of the podgate-crl Secret. */
export const CRL_SECRET_KEYS = { crl: 'crl.pem', bundle: 'revocations.json' } as const;

/** Key of the podgate-access Secret. */
export const ACCESS_SECRET_KEYS = { bundle: 'access.json' } as const;

/** Keys of the podgate-agent-status ConfigMap. */
export const STATUS_KEYS = {
  crlNumber: 'lastAppliedCrlNumber',
  appliedAt: 'lastAppliedAt',
  revoked: 'lastRevoked',
  pod: 'pod',
  pending: 'pending',
} as const;

export const LABELS = {
  'app.kubernetes.io/name': 'podgate',
  'app.kubernetes.io/component': 'openvpn',
  'app.kubernetes.io/managed-by': 'podgate',
} as const;

export const CHECKSUM_ANNOTATION = 'podgate.io/config-checksum';

/** The PodSecurity level the OpenVPN pod needs: NET_ADMIN and NET_RAW are outside `baseline`. */
export const POD_SECURITY_LEVEL = 'privileged';
export const POD_SECURITY_ENFORCE = 'pod-security.kubernetes.io/enforce';
