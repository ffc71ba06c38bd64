/**
 * The office gateway module: provision a Linux host over SSH so that it carries the office LAN into the
 * cluster (OpenVPN client + forwarding + NAT + a service), report on it, remove it; and reach the
 * Kubernetes API server through an SSH bastion. Only the CLI (and later the web app) builds the real
 * dependencies (ssh2 sessions, the certificate services, the store) and passes them in.
 */
export { provisionGateway, validateProvision, PROVISION_STEPS, StepFailed } from './provision.js';
export type { ProvisionOptions, ProvisionDeps, StepReport } from './provision.js';
export { gatewayStatus, formatStatus, type GatewayStatus } from './status.js';
export { removeGateway, type RemoveDeps } from './remove.js';
export { withBastion, type BastionTunnel, type BastionDeps } from './ssh-tunnel.js';
export { connectSsh, HostKeyRefused, type SshSession, type SshConnectOptions } from './ssh-session.js';
export { parseTarget, formatTarget, type SshTarget } from './target.js';
export { gatewayLayout, type GatewayLayout } from './layout.js';
export type { GatewayCertificates, StepResult } from './step.js';
