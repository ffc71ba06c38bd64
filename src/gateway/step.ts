/**
 * What a provisioning step is and what it gets. Each step looks before it acts (so a second run, and a
 * --dry-run, change nothing) and reports one of the results below.
 */
import type { Cidr } from '../lib/cidr.js';
import type { CertRecord } from '../store/types.js';
import type { GatewayLayout } from './layout.js';
import type { RemoteHost } from './remote.js';

export type StepResult = 'changed' | 'unchanged' | 'would change' | 'skipped';

/** The certificate operations provisioning needs (built from the services by the CLI; faked in tests). */
export interface GatewayCertificates {
  /** The valid certificate with this common name, if any. */
  findValid(commonName: string): Promise<CertRecord | undefined>;
  /** Issues a `gateway` certificate and returns it with the rendered .ovpn profile (key inline). */
  issue(commonName: string): Promise<{ cert: CertRecord; profile: string }>;
  /** Revokes by serial. */
  revoke(serial: string, reason: 'superseded' | 'cessationOfOperation'): Promise<void>;
}

export type ServiceManager = 'systemd' | 'daemon';

export interface StepContext {
  host: RemoteHost;
  layout: GatewayLayout;
  lans: Cidr[];
  /** First address of the first pod/service range, probed with `ip route get`; undefined = no ranges known. */
  routeProbe: string | undefined;
  dryRun: boolean;
  install: boolean;
  serviceManager: 'auto' | ServiceManager;
  certs: GatewayCertificates;
  now: () => Date;
  /** How long to wait for the tunnel and the route. */
  waitMs: number;
  sleep: (ms: number) => Promise<void>;
  /** Filled in by earlier steps for later ones. */
  state: {
    openvpnPath?: string;
    iptablesPath?: string;
    manager?: ServiceManager;
    profile?: string;
    cert?: CertRecord;
    /** The profile or unit changed: a running service must restart. */
    restart?: boolean;
    /** Nothing to wait for in a dry run when the service would (re)start. */
    serviceWouldChange?: boolean;
  };
}

export interface StepOutcome {
  result: StepResult;
  /** Short human detail, e.g. "Linux, root, openvpn 2.6.14". */
  detail?: string;
}

export interface Step {
  /** Short label printed as `[label]`. */
  label: string;
  run(ctx: StepContext): Promise<StepOutcome>;
}
